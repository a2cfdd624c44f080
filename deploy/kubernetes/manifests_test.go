// Package kubernetes holds the manifests that run cgprocfs on every node
// of a cluster; its test decodes them strictly into the Kubernetes API
// types, so that a misspelt field fails here rather than be dropped by the
// API server.
package kubernetes

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes a YAML document into obj as the API server does,
// field names matched case-sensitively (encoding/json, under
// sigs.k8s.io/yaml's UnmarshalStrict, would take hostPid for hostPID), and
// fails on a field obj's type lacks or one given twice.
func decodeStrict(doc []byte, obj any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := k8sjson.UnmarshalStrict(data, obj, k8sjson.DisallowDuplicateFields, k8sjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// objects decodes every manifest of this directory strictly (decodeStrict).
// It returns the objects by kind.
func objects(t *testing.T) map[string][]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			var obj any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "apps/v1 DaemonSet":
				obj = &appsv1.DaemonSet{}
			default:
				t.Fatalf("%s, document %d: unexpected %s %s", f, i, meta.APIVersion, meta.Kind)
			}
			if err := decodeStrict(doc, obj); err != nil {
				t.Fatalf("%s, document %d (%s): %v", f, i, meta.Kind, err)
			}
			out[meta.Kind] = append(out[meta.Kind], obj)
		}
	}
	return out
}

func stripComments(doc []byte) []byte {
	var keep [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			keep = append(keep, l)
		}
	}
	return bytes.Join(keep, []byte("\n"))
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	for _, field := range []string{"hostPid: true", "hostPIDs: true", "hostPID: true\n      hostPID: false"} {
		var ds appsv1.DaemonSet
		doc := []byte("apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      " + field + "\n")
		if err := decodeStrict(doc, &ds); err == nil {
			t.Errorf("%q decoded without an error", field)
		}
	}
	var ds appsv1.DaemonSet
	if err := decodeStrict([]byte("spec:\n  template:\n    spec:\n      hostPID: true\n"), &ds); err != nil || !ds.Spec.Template.Spec.HostPID {
		t.Errorf("a right field: %v, %+v", err, ds.Spec.Template.Spec)
	}
}

func TestManifests(t *testing.T) {
	objs := objects(t)
	if len(objs["Namespace"]) != 1 || len(objs["ServiceAccount"]) != 1 || len(objs["DaemonSet"]) != 1 {
		t.Fatalf("want one Namespace, ServiceAccount and DaemonSet, have %v", objs)
	}
	ns := objs["Namespace"][0].(*corev1.Namespace).Name
	sa := objs["ServiceAccount"][0].(*corev1.ServiceAccount)
	ds := objs["DaemonSet"][0].(*appsv1.DaemonSet)
	if sa.Namespace != ns || ds.Namespace != ns {
		t.Errorf("namespaces: Namespace %q, ServiceAccount %q, DaemonSet %q", ns, sa.Namespace, ds.Namespace)
	}
	pod := ds.Spec.Template
	for k, v := range ds.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the selector's %s=%s is not on the pod template", k, v)
		}
	}
	spec := pod.Spec
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q, the ServiceAccount is %q", spec.ServiceAccountName, sa.Name)
	}
	if !spec.HostPID {
		t.Error("hostPID is off: callers and containers are found by host pid")
	}
	if pod.Annotations["cgprocfs.io/enabled"] != "false" {
		t.Error("the daemon's own pod is not annotated cgprocfs.io/enabled=false")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("the container is not privileged")
	}
	if len(c.Args) == 0 || c.Args[0] != "mount" || !slices.Contains(c.Args, "--nri") {
		t.Errorf("args %q: want mount --nri ...", c.Args)
	}
	mountpoint := c.Args[len(c.Args)-1]
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || !slices.Equal(c.ReadinessProbe.Exec.Command, []string{"/cgprocfs", "status", mountpoint}) {
		t.Errorf("readiness probe %+v: want exec /cgprocfs status %s", c.ReadinessProbe, mountpoint)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	hostPathAt := map[string]string{} // container path -> host path
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok || v.HostPath == nil {
			t.Errorf("volume mount %s: no hostPath volume of that name", m.Name)
			continue
		}
		hostPathAt[m.MountPath] = v.HostPath.Path
		if m.MountPath == mountpoint && (m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional) {
			t.Errorf("the mount point %s is not mounted with Bidirectional propagation", mountpoint)
		}
	}
	// The runtime resolves the plugin's bind sources on the host: the
	// mount point must be at the same path in both.
	for container, host := range map[string]string{
		mountpoint:       mountpoint,
		"/sys/fs/cgroup": "/sys/fs/cgroup",
		"/run/cgprocfs":  "/run/cgprocfs",
		"/var/run/nri":   "/var/run/nri",
		"/host/proc":     "/proc",
	} {
		if hostPathAt[container] != host {
			t.Errorf("%s in the container is host path %q, want %s", container, hostPathAt[container], host)
		}
	}
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--nri-socket="); ok && filepath.Dir(v) != "/var/run/nri" {
			t.Errorf("--nri-socket %s is not in the mounted NRI directory", v)
		}
		if v, ok := strings.CutPrefix(a, "--proc-root="); ok && hostPathAt[v] != "/proc" {
			t.Errorf("--proc-root %s is not the host's /proc", v)
		}
	}
}

// The image runs the binary where the DaemonSet's probe calls it.
func TestContainerfile(t *testing.T) {
	data, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{"\nFROM scratch\n", "\nCOPY bin/cgprocfs /cgprocfs\n", "\nENTRYPOINT [\"/cgprocfs\"]\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("deploy/Containerfile lacks %q", strings.TrimSpace(want))
		}
	}
}
