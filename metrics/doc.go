// Package metrics exports what the daemon does and what its containers see
// as Prometheus metrics: requests per served file (fs.Observer), failed
// resolutions, host fallbacks and load rounds (provider.Observer),
// re-attached binds, and per-container figures computed at scrape time from
// provider.Containers by the same code that renders their files. Everything
// lives in one registry owned by a Metrics value; nothing is global.
package metrics
