// Package cgroupview reads what a cgroup says: its memory, CPU time, quota,
// cpuset and I/O, normalised over cgroup v1 and v2. New detects the layout
// once and returns the v1 or the v2 Reader; callers name Resources, never a
// controller or a version's file. Parsers of the cgroup files sit beside
// their fixtures in testdata/ and their fuzz targets.
package cgroupview
