package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerd is a containerd with NRI and the CRI plugin whose every path
// (config, root, state, sockets, shim sockets, runc root, CNI and CDI
// directories, logs) lies in one temporary directory, running pods with
// Debian's runc under a cgroup parent of the test's own, with no registry
// and no network plugin (pods use the host's network). Nothing of a host
// containerd is touched.
type containerd struct {
	t   *testing.T
	bin string
	dir string
	// Addr is the CRI socket, NRISocket the NRI one.
	Addr, NRISocket string
	// CgroupParent is the top cgroup the pods go in, in every hierarchy.
	CgroupParent string
	// Image is the one image, for sandboxes and containers alike.
	Image string
	cmd   *exec.Cmd
	done  chan struct{}
	runc  string
	log   string
	// podConfigs are the pods' config files by pod id: crictl create
	// takes the pod's config too.
	podConfigs map[string]string
}

// containerdBinDir is where hack/containerd.sh built containerd, its shim,
// ctr and crictl: $CGPROCFS_CONTAINERD_BIN, or the build cache of this
// checkout. "" when they are not there.
func containerdBinDir() string {
	dirs := []string{os.Getenv("CGPROCFS_CONTAINERD_BIN")}
	cached, _ := filepath.Glob("../.cache/containerd/*/bin")
	slices.Reverse(cached) // the newest version first
	for _, d := range append(dirs, cached...) {
		if d == "" {
			continue
		}
		ok := true
		for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "crictl"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.Mode()&0o111 == 0 {
				ok = false
			}
		}
		if ok {
			abs, err := filepath.Abs(d)
			if err == nil {
				return abs
			}
		}
	}
	return ""
}

// newContainerd starts containerd and imports the test image; everything
// it made goes when the test ends, also when it fails.
func newContainerd(t *testing.T) *containerd {
	t.Helper()
	needRoot(t)
	bin := containerdBinDir()
	if bin == "" {
		t.Skip("containerd and crictl are not built (make test builds them with hack/containerd.sh into .cache/containerd, or set CGPROCFS_CONTAINERD_BIN; the cgroup v2 VM has none)")
	}
	runc := runcBinary(t)
	busybox := "/bin/busybox"
	if !exists(busybox) {
		t.Skip("busybox-static is not installed (hack/deps.sh test installs it)")
	}
	// Short: shim sockets are named <dir>/s/<64 hex digits>, and a unix
	// socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "cgprocfs-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{
		t: t, bin: bin, dir: dir, runc: runc,
		Addr:         filepath.Join(dir, "run", "containerd.sock"),
		NRISocket:    filepath.Join(dir, "run", "nri.sock"),
		CgroupParent: fmt.Sprintf("cgprocfs-test-ctrd-%d-%d", os.Getpid(), cgroupSeq.Add(1)),
		Image:        "localhost/cgprocfs-test/host-usr:1",
		log:          filepath.Join(dir, "containerd.log"),
		podConfigs:   map[string]string{},
	}
	t.Cleanup(c.cleanup)
	for _, d := range []string{"etc", "root", "state", "run", "s", "runc", "tmp", "opt", "cni/bin", "cni/net.d", "cdi", "nri/plugins", "nri/conf.d", "image-verifier", "pods"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.writeConfig()
	c.Start()
	archive := filepath.Join(dir, "image.tar")
	writeImageArchive(t, archive, c.Image, busybox)
	if out, err := c.ctr("images", "import", "--platform", "linux/"+runtime.GOARCH, archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	// The CRI plugin learns of imported images from events, a moment later.
	poll(t, 10*time.Second, "the imported image to show in CRI", func() bool {
		_, err := c.crictl("inspecti", c.Image)
		return err == nil
	})
	return c
}

func (c *containerd) writeConfig() {
	c.t.Helper()
	p := func(rel string) string { return filepath.Join(c.dir, rel) }
	cfg := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
temp = %[3]q
imports = []

[grpc]
  address = %[4]q

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[5]q
  [plugins.'io.containerd.cri.v1.runtime']
    cdi_spec_dirs = [%[6]q]
    # No CAP_SYS_RESOURCE in some test machines' root: runc could not
    # set the sandbox's default oom_score_adj of -998.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %[7]q
          Root = %[8]q
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[9]q]
      conf_dir = %[10]q
  [plugins.'io.containerd.nri.v1.nri']
    disable = false
    socket_path = %[11]q
    plugin_path = %[12]q
    plugin_config_path = %[13]q
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = %[14]q
  [plugins.'io.containerd.internal.v1.opt']
    path = %[15]q
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = %[16]q
`, p("root"), p("state"), p("tmp"), c.Addr, c.Image, p("cdi"), c.runc, p("runc"), p("cni/bin"), p("cni/net.d"),
		c.NRISocket, p("nri/plugins"), p("nri/conf.d"), p("s"), p("opt"), p("image-verifier"))
	if err := os.WriteFile(p("etc/config.toml"), []byte(cfg), 0o644); err != nil {
		c.t.Fatal(err)
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\npull-image-on-create: false\n", c.Addr, c.Addr)
	if err := os.WriteFile(p("etc/crictl.yaml"), []byte(crictl), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// Start starts containerd and waits for its CRI and NRI sockets.
func (c *containerd) Start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(filepath.Join(c.bin, "containerd"), "--config", filepath.Join(c.dir, "etc/config.toml"), "--log-level", "info")
	// containerd finds its shim on PATH.
	c.cmd.Env = append(os.Environ(), "PATH="+c.bin+":"+os.Getenv("PATH"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("starting containerd: %v", err)
	}
	c.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(c.cmd, c.done)
	poll(c.t, 30*time.Second, "containerd's CRI and NRI sockets", func() bool {
		select {
		case <-c.done:
			c.t.Fatalf("containerd exited:\n%s", c.logTail())
		default:
		}
		_, err := c.crictl("info")
		return err == nil && exists(c.NRISocket)
	})
}

// Stop stops containerd (SIGTERM); its shims and containers go on.
func (c *containerd) Stop() {
	c.t.Helper()
	if c.cmd == nil {
		return
	}
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			c.t.Errorf("containerd did not exit 20 s after SIGTERM")
			c.cmd.Process.Kill()
			<-c.done
		}
	}
	c.cmd = nil
}

func (c *containerd) running() bool {
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Log is what containerd logged so far.
func (c *containerd) Log() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

func (c *containerd) logTail() string {
	lines := strings.Split(c.Log(), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

func (c *containerd) crictl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bin, "crictl"), append([]string{"--config", filepath.Join(c.dir, "etc/crictl.yaml")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Crictl runs crictl and fails the test when it fails.
func (c *containerd) Crictl(args ...string) string {
	c.t.Helper()
	out, err := c.crictl(args...)
	if err != nil {
		c.t.Fatalf("%v\ncontainerd log:\n%s", err, c.logTail())
	}
	return strings.TrimSpace(out)
}

func (c *containerd) ctr(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(c.bin, "ctr"), append([]string{"--address", c.Addr, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	return string(out), err
}

// RunPod starts a pod sandbox in namespace ns with the host's network,
// annotated with annotations, and returns its id.
func (c *containerd) RunPod(name, ns string, annotations map[string]string) string {
	c.t.Helper()
	uid := fmt.Sprintf("%s-%s-uid", ns, name)
	// A pod on the host's network has the host's UTS namespace, where
	// runc refuses to set a hostname: none is given, as kubelet does.
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": ns, "uid": uid, "attempt": 0},
		"log_directory": filepath.Join(c.dir, "pods", uid),
		"annotations":   annotations,
		"linux": map[string]any{
			"cgroup_parent":    "/" + c.CgroupParent + "/pod-" + uid,
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2, "pid": 1, "ipc": 0}},
		},
	}
	path := c.writeJSON("pod-"+uid+".json", cfg)
	id := c.Crictl("runp", path)
	c.podConfigs[id] = path
	return id
}

// Container creates and starts a container in pod that runs sleep with
// the host's /usr bound in, limited to memLimit bytes, and returns its id.
func (c *containerd) Container(pod, name string, memLimit int64, annotations map[string]string) string {
	c.t.Helper()
	return c.ContainerSeccomp(pod, name, memLimit, annotations, nil)
}

// ContainerSeccomp is Container with the container's security_context
// seccomp (a CRI SecurityProfile, {"profile_type": 0} for RuntimeDefault);
// nil leaves it out.
func (c *containerd) ContainerSeccomp(pod, name string, memLimit int64, annotations map[string]string, seccomp map[string]any) string {
	c.t.Helper()
	podCfg := c.podConfigs[pod]
	linux := map[string]any{"resources": map[string]any{"memory_limit_in_bytes": memLimit}}
	if seccomp != nil {
		linux["security_context"] = map[string]any{"seccomp": seccomp}
	}
	cfg := map[string]any{
		"metadata":    map[string]any{"name": name, "attempt": 0},
		"image":       map[string]any{"image": c.Image},
		"command":     []string{"/usr/bin/sleep", "infinity"},
		"log_path":    name + ".log",
		"annotations": annotations,
		"mounts":      []map[string]any{{"container_path": "/usr", "host_path": "/usr", "readonly": true}},
		"linux":       linux,
	}
	path := c.writeJSON("ctr-"+name+".json", cfg)
	id := c.Crictl("create", pod, path, podCfg)
	c.Crictl("start", id)
	poll(c.t, 10*time.Second, "container "+name+" to run", func() bool {
		var st struct {
			Status struct{ State string } `json:"status"`
		}
		out, err := c.crictl("inspect", "-o", "json", id)
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status.State == "CONTAINER_RUNNING"
	})
	return id
}

func (c *containerd) writeJSON(name string, v any) string {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.dir, "etc", name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Spec is the container's OCI runtime spec, as containerd made it.
func (c *containerd) Spec(id string) runtimeSpec {
	c.t.Helper()
	var in struct {
		Info struct {
			RuntimeSpec runtimeSpec `json:"runtimeSpec"`
			Pid         int         `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.Crictl("inspect", "-o", "json", id)), &in); err != nil {
		c.t.Fatalf("crictl inspect %s: %v", id, err)
	}
	return in.Info.RuntimeSpec
}

type runtimeSpec struct {
	Mounts []struct {
		Destination string   `json:"destination"`
		Type        string   `json:"type"`
		Source      string   `json:"source"`
		Options     []string `json:"options"`
	} `json:"mounts"`
}

// cleanup removes what the containerd made, in an order where each step
// still has what it needs: the pods through CRI while containerd runs,
// then containerd, shims it left, runc state, mounts, cgroups, files.
func (c *containerd) cleanup() {
	t := c.t
	if t.Failed() {
		t.Logf("containerd log (last lines):\n%s", c.logTail())
	}
	if c.running() {
		out, _ := c.crictl("pods", "-q")
		for _, pod := range strings.Fields(out) {
			c.crictl("stopp", pod)
			if _, err := c.crictl("rmp", "-f", pod); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	c.Stop()
	shim := filepath.Join(c.bin, "containerd-shim-runc-v2")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if exe == shim && bytes.Contains(cmdline, []byte(c.Addr+"\x00")) {
			t.Logf("cleanup: killing a shim containerd left, pid %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, root := range mustGlob(t, filepath.Join(c.dir, "runc", "*")) {
		out, _ := exec.Command(c.runc, "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			t.Logf("cleanup: runc delete --force %s", id)
			exec.Command(c.runc, "--root", root, "delete", "--force", id).Run()
		}
	}
	unmountUnder(t, c.dir)
	for _, top := range c.cgroupDirs() {
		var all []string
		filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			removeCgroupDir(t, all[i])
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// cgroupDirs are the pods' parent cgroup in every hierarchy that has it
// (containerd makes it in all v1 hierarchies, not only the ones tests use).
func (c *containerd) cgroupDirs() []string {
	if unified {
		return mustGlob(c.t, filepath.Join(cgroupRoot, c.CgroupParent))
	}
	return mustGlob(c.t, filepath.Join(cgroupRoot, "*", c.CgroupParent))
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	slices.Sort(mps)
	slices.Reverse(mps)
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("cleanup: unmounting %s: %v", mp, err)
		}
	}
}

// writeImageArchive writes an OCI image archive (for ctr images import)
// named ref, of one layer: busybox-static at /busybox (a sandbox's pause
// process: sleep), the directories a container needs, and Debian's
// merged-/usr links, so that a container with the host's /usr bound in has
// the host's tools (procps free) at their usual paths.
func writeImageArchive(t *testing.T, path, ref, busybox string) {
	t.Helper()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"dev", "etc", "proc", "run", "sys", "tmp", "usr", "var"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode}, nil)
	}
	for _, l := range []string{"bin", "lib", "lib32", "lib64", "libx32", "sbin"} {
		if exists("/usr/" + l) {
			add(&tar.Header{Name: l, Typeflag: tar.TypeSymlink, Linkname: "usr/" + l, Mode: 0o777}, nil)
		}
	}
	add(&tar.Header{Name: "busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, bb)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}

	blobs := map[string][]byte{}
	blob := func(data []byte) (string, int) {
		sum := sha256.Sum256(data)
		d := hex.EncodeToString(sum[:])
		blobs[d] = data
		return "sha256:" + d, len(data)
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDigest, layerSize := blob(layer.Bytes())
	config := mustJSON(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": "1970-01-01T00:00:00Z",
		"config": map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Entrypoint": []string{"/busybox", "sleep", "2147483647"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	configDigest, configSize := blob(config)
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	})
	manifestDigest, manifestSize := blob(manifest)
	index := mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
			"platform":    map[string]any{"architecture": runtime.GOARCH, "os": "linux"},
			"annotations": map[string]any{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref[strings.LastIndex(ref, ":")+1:]},
		}},
	})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw := tar.NewWriter(f)
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index}
	for d, b := range blobs {
		files["blobs/sha256/"+d] = b
	}
	names := slices.Sorted(maps.Keys(files))
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := aw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if err := aw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := aw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
}
