package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cgprocfs/cgprocfs/ocihook"
)

func TestOCIHookCommandLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"oci-hook", "--bogus"}, "flag provided but not defined"},
		{[]string{"oci-hook", "extra"}, "takes no arguments"},
		{[]string{"oci-hook", "--timeout", "0s"}, "--timeout must be a positive duration"},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("cgprocfs %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

func TestHookReport(t *testing.T) {
	var w bytes.Buffer
	// Bad input is reported on one line, never returned: exit 0.
	hookOutcome(&w, ocihook.Config{Mountpoint: "/m"}, strings.NewReader("{\n"), time.Minute)
	if got := w.String(); !strings.HasPrefix(got, "cgprocfs oci-hook: bound nothing: stdin is not an OCI container state") || strings.Count(got, "\n") != 1 {
		t.Errorf("garbage on stdin: %q", got)
	}
	w.Reset()
	report(&w, ocihook.Config{Mountpoint: "/m"}, ocihook.Result{ID: "c1", Bound: []string{"proc/meminfo", "proc/stat"}, Notes: []string{"proc/swaps: x"}}, nil)
	want := "cgprocfs oci-hook: container c1: bound 2 files from /m read-only: proc/meminfo proc/stat\n" +
		"cgprocfs oci-hook: container c1: proc/swaps: x\n"
	if w.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", w.String(), want)
	}
	w.Reset()
	report(&w, ocihook.Config{}, ocihook.Result{ID: "c1"}, errors.New("a\nb"))
	if w.String() != "cgprocfs oci-hook: container c1: bound nothing: a b\n" {
		t.Errorf("multi-line error: %q", w.String())
	}
}
