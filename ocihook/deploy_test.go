package ocihook

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hooksFile is the oci-hooks(5) format, version 1.0.0, that podman and
// CRI-O read from their hooks.d directories.
type hooksFile struct {
	Version string     `json:"version"`
	Hook    specs.Hook `json:"hook"`
	When    struct {
		Always        *bool             `json:"always,omitempty"`
		Annotations   map[string]string `json:"annotations,omitempty"`
		Commands      []string          `json:"commands,omitempty"`
		HasBindMounts *bool             `json:"hasBindMounts,omitempty"`
	} `json:"when"`
	Stages []string `json:"stages"`
}

func TestDeployedHooksFile(t *testing.T) {
	data, err := os.ReadFile("../deploy/oci-hooks.d/cgprocfs.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f hooksFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decoding strictly: %v", err)
	}
	if dec.More() {
		t.Error("more than one JSON value")
	}
	if f.Version != "1.0.0" {
		t.Errorf("version %q", f.Version)
	}
	if f.Hook.Path != "/usr/local/bin/cgprocfs" || !slices.Equal(f.Hook.Args, []string{"cgprocfs", "oci-hook"}) {
		t.Errorf("hook %+v", f.Hook)
	}
	// A runtime kills a hook past its timeout and fails the container;
	// the hook has a deadline of its own and exits 0 at it.
	if f.Hook.Timeout != nil {
		t.Errorf("hook has a timeout: %d", *f.Hook.Timeout)
	}
	if f.When.Always == nil || !*f.When.Always || f.When.Annotations != nil || f.When.Commands != nil || f.When.HasBindMounts != nil {
		t.Errorf("when %+v, want only always: true", f.When)
	}
	if !slices.Equal(f.Stages, []string{"createContainer"}) {
		t.Errorf("stages %q", f.Stages)
	}
}
