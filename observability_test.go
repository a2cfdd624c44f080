package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestObservabilityFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-listen", "unix:"}, "--metrics-listen \"unix:\": unix: needs a socket path"},
		{[]string{"--metrics-listen", "9750"}, "--metrics-listen \"9750\": want HOST:PORT or unix:PATH"},
		{[]string{"--log-format", "xml"}, `--log-format must be text or json, not "xml"`},
	} {
		cfg, _, err := runCLI(t, append(append([]string{"mount"}, c.args...), "/mnt")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mount %v: %v, want an error containing %q", c.args, err, c.want)
		}
		if cfg != nil {
			t.Errorf("mount %v reached the action", c.args)
		}
	}

	cfg, _, err := runCLI(t, "mount")
	if err != nil || cfg.metricsListen != DefaultMetricsListen || cfg.metricsListenSet || cfg.metricsAll || cfg.logFormat != "text" {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, _, err = runCLI(t, "mount", "--metrics-listen", "", "--metrics-all-cgroups", "--log-format", "JSON", "--loadavg-idle-timeout", "5m")
	if err != nil || cfg.metricsListen != "" || !cfg.metricsListenSet || !cfg.metricsAll || cfg.provider.ContainerIdle.Minutes() != 5 {
		t.Errorf("set: %+v, %v", cfg, err)
	}
}

func TestLogFormatJSON(t *testing.T) {
	var buf bytes.Buffer
	h, ok := logHandler(&buf, "json", slog.LevelInfo)
	if !ok {
		t.Fatal("json refused")
	}
	slog.New(h).Info("serving", "mountpoint", "/x")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "serving" || line["mountpoint"] != "/x" {
		t.Errorf("json line %q: %v", buf.String(), err)
	}
}
