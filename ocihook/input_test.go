package ocihook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseState(t *testing.T) {
	for _, c := range []struct {
		name, in, wantErr string
	}{
		{"garbage", "garbage\n", "not an OCI container state"},
		{"empty", "", "stdin is empty"},
		{"blank", " \n\t", "stdin is empty"},
		{"array", `[1,2]`, "not an OCI container state"},
		{"truncated", `{"ociVersion":"1.0.2","id":"x","pid":1,"bundle":"/b"`, "not an OCI container state"},
		{"no bundle", `{"ociVersion":"1.0.2","id":"x","pid":1}`, "has no bundle"},
		{"relative bundle", `{"ociVersion":"1.0.2","id":"x","pid":1,"bundle":"b"}`, "not an absolute path"},
		{"negative pid", `{"ociVersion":"1.0.2","id":"x","pid":-4,"bundle":"/b"}`, "negative pid"},
		{"too big", `{"id":"` + strings.Repeat("x", maxState) + `"}`, "over"},
		{"ok", `{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/b","annotations":{"a":"b"}}`, ""},
		// What crun passes to createContainer hooks: pid 0, and a root.
		{"crun", `{"ociVersion":"1.0","id":"x","pid":0,"root":"/b/rootfs","bundle":"/b","status":"created","annotations":{"a":"b"}}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := ParseState(strings.NewReader(c.in))
			if c.wantErr == "" {
				if err != nil || st.ID != "x" || st.Bundle != "/b" || st.Annotations["a"] != "b" {
					t.Fatalf("ParseState: %+v, %v", st, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("ParseState(%.40q): %v, want an error saying %q", c.in, err, c.wantErr)
			}
		})
	}
}

func writeSpec(t *testing.T, bundle string, spec any) {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSpec(t *testing.T) {
	bundle := t.TempDir()
	if _, _, err := LoadSpec(bundle); err == nil || !strings.Contains(err.Error(), "has no config.json") {
		t.Errorf("bundle without config.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSpec(bundle); err == nil || !strings.Contains(err.Error(), "not an OCI runtime config") {
		t.Errorf("config.json that is not JSON: %v", err)
	}
	writeSpec(t, bundle, specs.Spec{Version: specs.Version})
	if _, _, err := LoadSpec(bundle); err == nil || !strings.Contains(err.Error(), "no root.path") {
		t.Errorf("config.json without a root: %v", err)
	}
	writeSpec(t, bundle, specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "rootfs/"}, Annotations: map[string]string{"k": "v"}})
	spec, rootfs, err := LoadSpec(bundle)
	if err != nil || rootfs != filepath.Join(bundle, "rootfs") || spec.Annotations["k"] != "v" {
		t.Errorf("relative root: %q, %v; want %s", rootfs, err, filepath.Join(bundle, "rootfs"))
	}
	writeSpec(t, bundle, specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "/var/lib/x/merged"}})
	if _, rootfs, err := LoadSpec(bundle); err != nil || rootfs != "/var/lib/x/merged" {
		t.Errorf("absolute root: %q, %v", rootfs, err)
	}
}

func TestDecide(t *testing.T) {
	on := map[string]string{AnnotationEnabled: "true"}
	off := map[string]string{AnnotationEnabled: "false"}
	bad := map[string]string{AnnotationEnabled: "maybe"}
	for _, c := range []struct {
		name          string
		spec, state   map[string]string
		optIn         bool
		want, warning bool
	}{
		{"default", nil, nil, false, true, false},
		{"off", off, nil, false, false, false},
		{"on", on, nil, false, true, false},
		{"FALSE", map[string]string{AnnotationEnabled: "FALSE"}, nil, false, false, false},
		{"other annotations", map[string]string{"io.podman.annotations.x": "false"}, nil, false, true, false},
		{"off in the state only", nil, off, false, false, false},
		{"the config wins over the state", on, off, false, true, false},
		{"opt-in, none", nil, nil, true, false, false},
		{"opt-in, on", on, nil, true, true, false},
		{"opt-in, off", off, nil, true, false, false},
		{"unparsable: default", bad, nil, false, true, true},
		{"unparsable under opt-in: off", bad, nil, true, false, true},
	} {
		d := Decide(c.spec, c.state, c.optIn)
		if d.Enabled != c.want || (d.Warning != "") != c.warning || d.Reason == "" {
			t.Errorf("%s: %+v, want enabled %v, a warning %v", c.name, d, c.want, c.warning)
		}
	}
}
