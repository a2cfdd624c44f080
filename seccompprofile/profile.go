package seccompprofile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Syscall is the call the profile sends to the agent.
const Syscall = "sysinfo"

// NotifyRule is the rule Add puts in a profile.
func NotifyRule() specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: []string{Syscall}, Action: specs.ActNotify}
}

// Default is the profile for a container that has none: every call allowed,
// sysinfo sent to the agent at listener.
func Default(listener string) specs.LinuxSeccomp {
	return specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  listener,
		Syscalls:      []specs.LinuxSyscall{NotifyRule()},
	}
}

// Add returns base with sysinfo sent to the agent at listener.
//
// A syscall named in two rules is decided by the runtime, not by this
// profile: runc 1.1.5 with libseccomp 2.5.4 takes the first rule and
// ignores the later one (integration's TestSysinfoTwoRulesRunc), so a
// notify rule after a default profile's allow list would never be used,
// and other runtimes may differ. So sysinfo is taken out of every rule of
// base, a rule left with no name dropped, and one notify rule added.
//
// Add refuses a base that does not already let sysinfo run (a profile
// whose default denies it and no unconditional rule allows it, or whose
// rule for it errors): the agent answers what it cannot with
// SECCOMP_USER_NOTIF_FLAG_CONTINUE, so the notify rule would let the call
// through. It refuses a base with another listenerPath too: a filter has
// one listener.
func Add(base []byte, listener string) ([]byte, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(base))
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not one JSON object: more follows it")
	}
	if top == nil {
		return nil, errors.New("not a JSON object: null")
	}
	var def specs.LinuxSeccompAction
	if err := field(top, "defaultAction", &def); err != nil {
		return nil, err
	}
	if def == "" {
		return nil, errors.New("no defaultAction: not a seccomp profile (the runtime-spec's linux.seccomp or containers-common's and docker's seccomp.json)")
	}
	var lp string
	if err := field(top, "listenerPath", &lp); err != nil {
		return nil, err
	}
	if lp != "" && lp != listener {
		return nil, fmt.Errorf("the profile already sends calls to the listener %q; a filter has one listener, so it cannot also use %q", lp, listener)
	}

	var rules []map[string]json.RawMessage
	if err := field(top, "syscalls", &rules); err != nil {
		return nil, err
	}
	allowed := allows(def)
	kept := make([]json.RawMessage, 0, len(rules)+1)
	for i, r := range rules {
		if r == nil {
			return nil, fmt.Errorf("syscalls[%d]: null, not a rule", i)
		}
		names, hadSysinfo, err := withoutSysinfo(r)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if hadSysinfo {
			var action specs.LinuxSeccompAction
			if err := field(r, "action", &action); err != nil {
				return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
			}
			switch {
			case (allows(action) || action == specs.ActNotify) && unconditional(r):
				// A notify rule: the profile is one made here, or sent
				// sysinfo to an agent already.
				allowed = true
			case !allows(action) && action != specs.ActNotify && unconditional(r):
				return nil, fmt.Errorf("syscalls[%d] answers sysinfo with %s: the profile forbids the call, and sending it to the agent would let it run", i, action)
			}
			if len(names) == 0 {
				continue // the rule named sysinfo alone
			}
			if err := setNames(r, names); err != nil {
				return nil, err
			}
		}
		raw, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		kept = append(kept, raw)
	}
	if !allowed {
		return nil, fmt.Errorf("the profile does not let sysinfo run (default action %s and no unconditional SCMP_ACT_ALLOW rule names it); sending it to the agent would let it run", def)
	}
	rule, err := json.Marshal(NotifyRule())
	if err != nil {
		return nil, err
	}
	kept = append(kept, rule)
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	set(top, "syscalls", raw)
	if raw, err = json.Marshal(listener); err != nil {
		return nil, err
	}
	set(top, "listenerPath", raw)
	out, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// field decodes m's name into v when present and not null. Keys match as
// encoding/json matches them, which is how runtimes written in Go read a
// profile: "Action" is "action" too.
func field(m map[string]json.RawMessage, name string, v any) error {
	raw, ok := m[name]
	if !ok {
		for k, r := range m {
			if strings.EqualFold(k, name) {
				raw, ok = r, true
				break
			}
		}
	}
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// allows tells whether action lets a call run.
func allows(a specs.LinuxSeccompAction) bool {
	return a == specs.ActAllow || a == specs.ActLog
}

// unconditional tells whether a rule applies to every call of its names:
// no argument test and no includes or excludes (containers-common's and
// docker's conditions on capabilities, architectures and kernels).
func unconditional(r map[string]json.RawMessage) bool {
	for _, k := range []string{"args", "includes", "excludes"} {
		var v json.RawMessage
		if err := field(r, k, &v); err != nil || (v != nil && !emptyJSON(v)) {
			return false
		}
	}
	return true
}

func emptyJSON(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			switch e := e.(type) {
			case nil:
			case string:
				if e != "" {
					return false
				}
			case []any:
				if len(e) != 0 {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	return false
}

// withoutSysinfo returns a rule's names with sysinfo taken out, and
// whether it named it. Docker's older format names one call in "name".
func withoutSysinfo(r map[string]json.RawMessage) (names []string, had bool, err error) {
	if err := field(r, "names", &names); err != nil {
		return nil, false, err
	}
	var name string
	if err := field(r, "name", &name); err != nil {
		return nil, false, err
	}
	if name != "" {
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, false, errors.New("a rule that names no system call")
	}
	kept := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == Syscall })
	return kept, len(kept) != len(names), nil
}

func setNames(r map[string]json.RawMessage, names []string) error {
	raw, err := json.Marshal(names)
	if err != nil {
		return err
	}
	set(r, "name", nil)
	set(r, "names", raw)
	return nil
}

// set replaces m's name, in any case, by raw (nil: removes it).
func set(m map[string]json.RawMessage, name string, raw json.RawMessage) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
	if raw != nil {
		m[name] = raw
	}
}

// AddSpec is Add on a runtime-spec profile; a nil base is a container
// without a profile, which gets Default.
func AddSpec(base *specs.LinuxSeccomp, listener string) (*specs.LinuxSeccomp, error) {
	if base == nil {
		d := Default(listener)
		return &d, nil
	}
	in, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	out, err := Add(in, listener)
	if err != nil {
		return nil, err
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("reading the profile back: %w", err)
	}
	return &p, nil
}
