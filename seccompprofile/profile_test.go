package seccompprofile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const listener = "/run/cgprocfs/seccomp.sock"

func decodeAny(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v in\n%s", err, data)
	}
	return m
}

func names(rule any) []string {
	var out []string
	for _, n := range rule.(map[string]any)["names"].([]any) {
		out = append(out, n.(string))
	}
	return out
}

// checkAdded checks that out is base with sysinfo out of every rule, the
// notify rule last and the listener set, and everything else unchanged.
func checkAdded(t *testing.T, base, out []byte) {
	t.Helper()
	b, o := decodeAny(t, base), decodeAny(t, out)
	if o["listenerPath"] != listener {
		t.Errorf("listenerPath %v, want %s", o["listenerPath"], listener)
	}
	for k, v := range b {
		if k != "syscalls" && k != "listenerPath" && !reflect.DeepEqual(o[k], v) {
			t.Errorf("%s changed: %v, was %v", k, o[k], v)
		}
	}
	for k := range o {
		if _, ok := b[k]; !ok && k != "listenerPath" && k != "syscalls" {
			t.Errorf("%s added", k)
		}
	}
	var want []any
	for _, r := range b["syscalls"].([]any) {
		r := r.(map[string]any)
		n := slices.DeleteFunc(names(r), func(s string) bool { return s == "sysinfo" })
		if len(n) == 0 {
			continue
		}
		c := make(map[string]any, len(r))
		for k, v := range r {
			c[k] = v
		}
		var ns []any
		for _, s := range n {
			ns = append(ns, s)
		}
		c["names"] = ns
		want = append(want, c)
	}
	want = append(want, map[string]any{"names": []any{"sysinfo"}, "action": "SCMP_ACT_NOTIFY"})
	if got := o["syscalls"]; !reflect.DeepEqual(got, want) {
		t.Errorf("syscalls:\n%v\nwant\n%v", got, want)
	}
}

func TestAddFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			base, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Add(base, listener)
			if err != nil {
				t.Fatal(err)
			}
			checkAdded(t, base, out)
			// Adding again changes nothing: the output is a base too.
			again, err := Add(out, listener)
			if err != nil {
				t.Fatalf("adding to the output: %v", err)
			}
			if string(again) != string(out) {
				t.Errorf("adding twice differs:\n%s\nonce:\n%s", again, out)
			}
		})
	}
}

// The output of a runtime-spec profile is one in the runtime-spec's types,
// as runc reads config.json's linux.seccomp.
func TestAddRuntimeSpec(t *testing.T) {
	base, err := os.ReadFile("testdata/runtime-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Add(base, listener)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.LinuxSeccomp
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not a runtime-spec LinuxSeccomp: %v\n%s", err, out)
	}
	eperm, eacces := uint(1), uint(13)
	want := specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
		Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
		ListenerPath:    listener,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
			{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: &eacces},
			NotifyRule(),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

// The default profile of this host's podman, when installed.
func TestAddContainersCommon(t *testing.T) {
	const path = "/usr/share/containers/seccomp.json"
	base, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("containers-common's profile: %v", err)
	}
	out, err := Add(base, listener)
	if err != nil {
		t.Fatal(err)
	}
	checkAdded(t, base, out)
}

func TestDefault(t *testing.T) {
	out, err := json.Marshal(Default(listener))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/cgprocfs/seccomp.sock","syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_NOTIFY"}]}`
	if string(out) != want {
		t.Errorf("got %s\nwant %s", out, want)
	}
	// Default is a base Add accepts, and leaves as it is.
	again, err := Add(out, listener)
	if err != nil {
		t.Fatal(err)
	}
	checkAdded(t, out, again)
}

func TestAddAccepts(t *testing.T) {
	for name, base := range map[string]string{
		"allow all, no rules":         `{"defaultAction":"SCMP_ACT_ALLOW"}`,
		"allow all, null rules":       `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":null}`,
		"log all":                     `{"defaultAction":"SCMP_ACT_LOG","syscalls":[]}`,
		"allow all, other rules":      `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}`,
		"docker's old single name":    `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"sysinfo","action":"SCMP_ACT_ALLOW","args":[]}]}`,
		"a notify rule for it":        `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sysinfo","getpid"],"action":"SCMP_ACT_NOTIFY"}]}`,
		"the same listener":           `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/cgprocfs/seccomp.sock"}`,
		"a conditional errno rule":    `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}`,
		"an allow rule and a refusal": `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ALLOW"},{"names":["sysinfo"],"action":"SCMP_ACT_ERRNO","includes":{"arches":["s390"]}}]}`,
	} {
		out, err := Add([]byte(base), listener)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		o := decodeAny(t, out)
		var sysinfoRules int
		for _, r := range o["syscalls"].([]any) {
			if slices.Contains(names(r), "sysinfo") {
				sysinfoRules++
				if r.(map[string]any)["action"] != "SCMP_ACT_NOTIFY" || len(names(r)) != 1 {
					t.Errorf("%s: rule %v", name, r)
				}
			}
			if _, ok := r.(map[string]any)["name"]; ok {
				t.Errorf("%s: a rule keeps the old single name: %v", name, r)
			}
		}
		if sysinfoRules != 1 {
			t.Errorf("%s: %d rules name sysinfo in\n%s", name, sysinfoRules, out)
		}
	}
}

func TestAddRefuses(t *testing.T) {
	for _, tc := range []struct{ name, base, want string }{
		{"empty", ``, "not a JSON object"},
		{"garbage", `seccomp`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"array", `[{"defaultAction":"SCMP_ACT_ALLOW"}]`, "not a JSON object"},
		{"two objects", `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "more follows"},
		{"cut short", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[`, "not a JSON object"},
		{"no default action", `{"syscalls":[]}`, "no defaultAction"},
		{"a config.json", `{"ociVersion":"1.0.2","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}`, "no defaultAction"},
		{"default action a number", `{"defaultAction":1}`, "defaultAction"},
		{"syscalls an object", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}`, "syscalls"},
		{"a null rule", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[null]}`, "syscalls[0]: null"},
		{"names a string", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":"sysinfo","action":"SCMP_ACT_ALLOW"}]}`, "syscalls[0]: names"},
		{"a rule without names", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}`, "names no system call"},
		{"action a number", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sysinfo"],"action":3}]}`, "syscalls[0]: action"},
		{"sysinfo denied by default", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`, "does not let sysinfo run"},
		{"sysinfo allowed on a condition only", `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`, "does not let sysinfo run"},
		{"sysinfo allowed for some arguments", `{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_NE"}]}]}`, "does not let sysinfo run"},
		{"sysinfo refused by a rule", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sysinfo","mount"],"action":"SCMP_ACT_ERRNO"}]}`, "syscalls[0] answers sysinfo with SCMP_ACT_ERRNO"},
		{"another listener", `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/other.sock"}`, `already sends calls to the listener "/run/other.sock"`},
	} {
		out, err := Add([]byte(tc.base), listener)
		if err == nil {
			t.Errorf("%s: accepted, gave\n%s", tc.name, out)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.name, err, tc.want)
		}
	}
}

// FuzzAdd: any input gets an error or a profile with one sysinfo rule,
// the notify rule, and never a panic. Rules that do not name sysinfo are
// the runtime's to check.
func FuzzAdd(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"sysinfo","action":"SCMP_ACT_ALLOW"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[null]}`))
	f.Fuzz(func(t *testing.T, base []byte) {
		out, err := Add(base, listener)
		if err != nil {
			return
		}
		var p struct {
			ListenerPath string
			Syscalls     []struct {
				Names  any // rules Add leaves alone may be anything
				Action any
			}
		}
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
		if p.ListenerPath != listener {
			t.Fatalf("listenerPath %q", p.ListenerPath)
		}
		n := 0
		for _, r := range p.Syscalls {
			if ns, ok := r.Names.([]any); ok && slices.Contains(ns, any(Syscall)) {
				n++
				if r.Action != string(specs.ActNotify) || len(ns) != 1 {
					t.Fatalf("sysinfo rule %+v", r)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d rules name sysinfo:\n%s", n, out)
		}
	})
}
