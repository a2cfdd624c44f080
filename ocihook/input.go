package ocihook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AnnotationEnabled turns the hook off ("false") or, under Config.OptIn, on
// ("true") for one container.
const AnnotationEnabled = "cgprocfs.io/enabled"

// maxState bounds what is read from stdin: a runtime's state is a few KiB,
// and a hook must not grow without limit on a stream that never ends.
const maxState = 1 << 20

// ParseState decodes the container state the runtime writes on the hook's
// stdin, and checks it names a bundle. The pid may be 0: crun passes 0 to
// createContainer hooks (runc passes its init's pid in the container's pid
// namespace, 1).
func ParseState(r io.Reader) (specs.State, error) {
	var st specs.State
	data, err := io.ReadAll(io.LimitReader(r, maxState+1))
	if err != nil {
		return st, fmt.Errorf("reading the container state from stdin: %w", err)
	}
	if len(data) > maxState {
		return st, fmt.Errorf("the container state on stdin is over %d bytes; a runtime's is a few KiB", maxState)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return st, errors.New("stdin is empty: a runtime passes the container state as JSON (this command is an OCI hook, not for use by hand)")
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("stdin is not an OCI container state: %w", err)
	}
	switch {
	case st.Bundle == "":
		return st, errors.New("the container state on stdin has no bundle")
	case !filepath.IsAbs(st.Bundle):
		return st, fmt.Errorf("the container state's bundle %q is not an absolute path", st.Bundle)
	case st.Pid < 0:
		return st, fmt.Errorf("the container state has a negative pid %d", st.Pid)
	}
	return st, nil
}

// LoadSpec reads the bundle's config.json and returns it with the absolute
// path of the container's root filesystem.
func LoadSpec(bundle string) (*specs.Spec, string, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("bundle %s has no config.json", bundle)
		}
		return nil, "", fmt.Errorf("reading the bundle's config: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, "", fmt.Errorf("%s is not an OCI runtime config: %w", path, err)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, "", fmt.Errorf("%s has no root.path", path)
	}
	rootfs := spec.Root.Path
	// The spec takes a relative root path as relative to the bundle.
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	return &spec, filepath.Clean(rootfs), nil
}

// Decision is whether a container gets the files, and why.
type Decision struct {
	Enabled bool
	Reason  string
	// Warning is set when the annotation has a value that is neither true
	// nor false, which is then ignored.
	Warning string
}

// Decide applies the annotation to the default: every container gets the
// files unless annotated cgprocfs.io/enabled=false, or under optIn only
// those annotated cgprocfs.io/enabled=true. The config's annotations come
// first; the state's, which runtimes copy from it, are the fallback.
func Decide(specAnnotations, stateAnnotations map[string]string, optIn bool) Decision {
	value, ok := specAnnotations[AnnotationEnabled]
	if !ok {
		value, ok = stateAnnotations[AnnotationEnabled]
	}
	var d Decision
	if ok {
		on, err := strconv.ParseBool(value)
		if err == nil {
			d.Enabled = on
			d.Reason = fmt.Sprintf("annotation %s=%s", AnnotationEnabled, value)
			return d
		}
		d.Warning = fmt.Sprintf("annotation %s=%q is neither true nor false; ignored", AnnotationEnabled, value)
	}
	if optIn {
		d.Reason = fmt.Sprintf("opt-in mode and no annotation %s=true", AnnotationEnabled)
		return d
	}
	d.Enabled = true
	d.Reason = "enabled by default"
	return d
}
