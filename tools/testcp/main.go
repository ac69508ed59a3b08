// Command testcp runs a throwaway Kubernetes control plane for tests:
// embedded etcd and kube-apiserver in one process, and optionally a
// kube-controller-manager child (garbage collector, namespace and
// serviceaccount controllers). Everything listens on 127.0.0.1 only.
//
// Modes (first argument):
//
//	testcp serve --dir DIR [flags]   run the control plane until SIGTERM/SIGINT
//	testcp kcm [kube-controller-manager flags]   (started by serve)
//	testcp version                   print the pinned component versions
//
// See tools/testcp/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"

	k8sversion "k8s.io/component-base/version"
)

// exitPortInUse is returned when a listener could not be bound because the
// address is taken (a lost race for a free port); the launcher retries.
const exitPortInUse = 75

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serveMain(os.Args[2:]))
	case "kcm":
		os.Exit(kcmMain(os.Args[2:]))
	case "version", "--version", "-version":
		fmt.Println(versionLine())
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "testcp: unknown mode %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  testcp serve --dir DIR [--apiserver-port N] [--etcd-port N] [--controllers=none|gc]
               [--ready-file PATH] [--exit-on-stdin-eof] [--apiserver-arg ARG]... [--keep-dir]
  testcp kcm [kube-controller-manager flags]
  testcp version
`)
}

// versions holds what was linked in, read from the build info so that nothing
// is hard-coded twice.
type versions struct {
	Kubernetes string `json:"kubernetes"`   // k8s.io/kubernetes module version
	GitVersion string `json:"gitVersion"`   // what /version reports (ldflags)
	Etcd       string `json:"etcd"`         // go.etcd.io/etcd/server/v3 module version
	Go         string `json:"go"`           // toolchain that built the binary
	Apiserver  string `json:"k8sApiserver"` // k8s.io/apiserver (staging) version
}

func readVersions() versions {
	v := versions{
		Kubernetes: "unknown",
		Etcd:       "unknown",
		Apiserver:  "unknown",
		GitVersion: k8sversion.Get().GitVersion,
		Go:         runtime.Version(),
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, d := range bi.Deps {
		ver := d.Version
		if d.Replace != nil {
			ver = d.Replace.Version
		}
		switch d.Path {
		case "k8s.io/kubernetes":
			v.Kubernetes = ver
		case "go.etcd.io/etcd/server/v3":
			v.Etcd = ver
		case "k8s.io/apiserver":
			v.Apiserver = ver
		}
	}
	return v
}

func versionLine() string {
	v := readVersions()
	return fmt.Sprintf("testcp kubernetes=%s gitVersion=%s k8s.io/apiserver=%s etcd=%s go=%s",
		v.Kubernetes, v.GitVersion, v.Apiserver, v.Etcd, v.Go)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type serveOptions struct {
	dir            string
	apiserverPort  int
	etcdPort       int
	controllers    string
	readyFile      string
	exitOnStdinEOF bool
	apiserverArgs  stringList
	keepDir        bool
	readyTimeout   int
	etcdQuota      int64
}

func parseServeFlags(args []string) (*serveOptions, error) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("testcp serve", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "work directory (required); created if missing")
	fs.IntVar(&o.apiserverPort, "apiserver-port", 0, "apiserver port on 127.0.0.1 (0 = pick a free one)")
	fs.IntVar(&o.etcdPort, "etcd-port", 0, "etcd client port on 127.0.0.1 (0 = pick a free one); the peer port is always picked")
	fs.StringVar(&o.controllers, "controllers", "none", "none | gc (garbage-collector, namespace, serviceaccount controllers in a child process)")
	fs.StringVar(&o.readyFile, "ready-file", "", "file written once everything is ready")
	fs.BoolVar(&o.exitOnStdinEOF, "exit-on-stdin-eof", false, "shut down when stdin reaches EOF (only with a real pipe)")
	fs.Var(&o.apiserverArgs, "apiserver-arg", "extra kube-apiserver argument, repeatable (e.g. --apiserver-arg=-v=4)")
	fs.BoolVar(&o.keepDir, "keep-dir", false, "keep the work directory on exit")
	fs.IntVar(&o.readyTimeout, "ready-timeout", 120, "seconds to wait for the apiserver (and controllers) to become ready")
	fs.Int64Var(&o.etcdQuota, "etcd-quota-bytes", 0, "etcd backend quota in bytes (0 = etcd's default, 2 GiB); large scale benchmarks need more")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.dir == "" {
		return nil, errors.New("--dir is required")
	}
	if o.controllers != "none" && o.controllers != "gc" {
		return nil, fmt.Errorf("--controllers must be none or gc, got %q", o.controllers)
	}
	return o, nil
}

// isAddrInUse reports whether err (or its text, for errors that were
// flattened into strings on the way up) says a bind failed with EADDRINUSE.
func isAddrInUse(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// pickPorts returns n distinct free ports on 127.0.0.1. The listeners stay
// open until all are chosen, so the same port is never returned twice; the
// race with other processes after closing is small and ends in exit 75.
func pickPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// server is one serve run.
type server struct {
	o       *serveOptions
	dir     string
	pki     pkiPaths
	log     *os.File
	out     *os.File // the original stdout (fd 1 now points at testcp.log)
	errOut  *os.File // the original stderr
	start   time.Time
	etcdEnd func()

	stop       chan struct{} // closed on the first stop request
	stopOnce   sync.Once
	stopReason string
	bySignal   bool

	apiStarted bool
	apiDone    chan struct{} // closed when Execute returned
	apiErr     error

	kcm *kcmChild
}

// say writes one of testcp's own messages to the original stderr and to the log.
func (s *server) say(format string, a ...any) {
	msg := fmt.Sprintf("testcp: "+format+"\n", a...)
	fmt.Fprint(s.errOut, msg)
	if s.errOut != s.log {
		fmt.Fprint(s.log, time.Now().Format(time.RFC3339Nano)+" "+msg)
	}
}

func (s *server) requestStop(reason string, signal bool) {
	s.stopOnce.Do(func() {
		s.stopReason = reason
		s.bySignal = signal
		close(s.stop)
	})
}

func (s *server) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// redirectOutput points fds 1 and 2 at the log (klog and etcd's zap write
// there) and returns the original stdout and stderr for testcp's own lines.
func redirectOutput(log *os.File) (out, errOut *os.File, err error) {
	o, err := syscall.Dup(1)
	if err != nil {
		return nil, nil, err
	}
	e, err := syscall.Dup(2)
	if err != nil {
		return nil, nil, err
	}
	syscall.CloseOnExec(o)
	syscall.CloseOnExec(e)
	if err := syscall.Dup3(int(log.Fd()), 1, 0); err != nil {
		return nil, nil, err
	}
	if err := syscall.Dup3(int(log.Fd()), 2, 0); err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(o), "stdout"), os.NewFile(uintptr(e), "stderr"), nil
}

func serveMain(args []string) int {
	start := time.Now()
	o, err := parseServeFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcp serve:", err)
		return 2
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcp serve:", err)
		return 1
	}
	p := newPKIPaths(dir)
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "testcp serve:", err)
		return 1
	}
	logf, err := os.OpenFile(filepath.Join(dir, "testcp.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcp serve:", err)
		return 1
	}
	out, errOut, err := redirectOutput(logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcp serve: redirect output:", err)
		return 1
	}
	s := &server{o: o, dir: dir, pki: p, log: logf, out: out, errOut: errOut, start: start,
		stop: make(chan struct{}), apiDone: make(chan struct{})}
	code := s.run()
	s.shutdown()
	if code == 0 {
		s.say("stopped (%s)", s.stopReason)
	}
	return code
}

// run starts everything, writes the ready file and waits for a stop request.
// Its result is the exit code; shutdown runs afterwards in every case.
func (s *server) run() int {
	sigc := make(chan os.Signal, 2)
	// kube-apiserver registers its own handler for these too; both receive them.
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigc
		s.requestStop("signal "+sig.String(), true)
	}()
	if s.o.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			s.requestStop("stdin closed", false)
		}()
	}

	s.say("%s", versionLine())
	// A restart on the same --dir (with --keep-dir) reuses the PKI, so clients keep working
	// across an API-server restart; etcd reuses its data directory by itself.
	if _, err := os.Stat(s.pki.WebhookKey); err == nil {
		s.say("reusing the PKI in %s (restart)", s.pki.Dir)
	} else if err := writePKI(s.pki); err != nil {
		s.say("PKI: %v", err)
		return 1
	}

	ports, err := pickPorts(3)
	if err != nil {
		s.say("pick ports: %v", err)
		return 1
	}
	apiPort, etcdPort, peerPort := ports[0], ports[1], ports[2]
	if s.o.apiserverPort != 0 {
		apiPort = s.o.apiserverPort
	}
	if s.o.etcdPort != 0 {
		etcdPort = s.o.etcdPort
	}
	if peerPort == etcdPort || peerPort == apiPort {
		peerPort = ports[1] // the picked etcd port is free when a fixed one was given
		if peerPort == apiPort {
			peerPort = ports[0]
		}
	}

	kubeconfig := filepath.Join(s.dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, s.pki, apiPort); err != nil {
		s.say("kubeconfig: %v", err)
		return 1
	}
	if s.stopped() {
		return 0
	}

	e, err := startEtcd(s.dir, etcdPort, peerPort, s.o.etcdQuota)
	if err != nil {
		s.say("%v", err)
		if isAddrInUse(err) {
			return exitPortInUse
		}
		return 1
	}
	s.etcdEnd = e.Close
	s.say("etcd ready on 127.0.0.1:%d after %.1fs", etcdPort, time.Since(s.start).Seconds())
	if s.stopped() {
		return 0
	}

	apiArgs := apiserverArgs(s.o, s.pki, apiPort, etcdPort)
	done := startAPIServer(apiArgs)
	s.apiStarted = true
	go func() {
		s.apiErr = <-done
		close(s.apiDone)
	}()

	client, err := adminHTTPClient(s.pki)
	if err != nil {
		s.say("admin client: %v", err)
		return 1
	}
	deadline := s.start.Add(time.Duration(s.o.readyTimeout) * time.Second)
	base := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	abort := func() error {
		select {
		case <-s.apiDone:
			return fmt.Errorf("kube-apiserver exited: %v", s.apiErr)
		case <-s.stop:
			return errors.New("stop requested (" + s.stopReason + ")")
		default:
			return nil
		}
	}
	if err := waitFor(client, base+"/readyz", deadline, "kube-apiserver", abort); err != nil {
		s.say("%v", err)
		if s.stopped() {
			return 0
		}
		if isAddrInUse(s.apiErr) {
			return exitPortInUse
		}
		return 1
	}
	s.say("kube-apiserver ready on %s after %.1fs", base, time.Since(s.start).Seconds())

	var kcmArgv []string
	if s.o.controllers == "gc" {
		kcmArgv = kcmArgs(s.dir, s.pki, kubeconfig)
		s.kcm, err = startKCM(kcmArgv, s.log)
		if err != nil {
			s.say("%v", err)
			return 1
		}
		kcmAbort := func() error {
			if err := abort(); err != nil {
				return err
			}
			select {
			case err := <-s.kcm.exited:
				s.kcm.exited <- err // keep it for shutdown
				return fmt.Errorf("controller-manager child exited: %v", err)
			default:
				return nil
			}
		}
		// The serviceaccount controller creates this once it runs.
		if err := waitFor(client, base+"/api/v1/namespaces/default/serviceaccounts/default",
			deadline, "controller-manager", kcmAbort); err != nil {
			s.say("%v", err)
			if s.stopped() {
				return 0
			}
			return 1
		}
		s.say("controller-manager child (pid %d) ready after %.1fs", s.kcm.pid, time.Since(s.start).Seconds())
	}

	st := &state{
		PID: os.Getpid(), Dir: s.dir, Kubeconfig: kubeconfig, Server: base,
		APIServerPort: apiPort, EtcdClientPort: etcdPort, EtcdPeerPort: peerPort,
		Controllers: s.o.controllers, Log: s.log.Name(), PKI: s.pki, Versions: readVersions(),
		APIServerArgs: apiArgs, KCMArgs: kcmArgv, StartSeconds: time.Since(s.start).Seconds(),
	}
	if s.kcm != nil {
		st.KCMPID = s.kcm.pid
	}
	if err := writeState(filepath.Join(s.dir, "state.json"), st); err != nil {
		s.say("state.json: %v", err)
		return 1
	}
	if s.o.readyFile != "" {
		if err := writeFileAtomic(s.o.readyFile, []byte(kubeconfig+"\n"), 0o644); err != nil {
			s.say("ready file: %v", err)
			return 1
		}
	}
	fmt.Fprintf(s.out, "TESTCP READY %s\n", kubeconfig)
	s.say("ready after %.1fs", st.StartSeconds)

	var kcmExited chan error
	if s.kcm != nil {
		kcmExited = s.kcm.exited
	}
	for {
		select {
		case <-s.stop:
			return 0
		case <-s.apiDone:
			if s.stopped() {
				return 0
			}
			s.say("kube-apiserver exited unexpectedly: %v", s.apiErr)
			return 1
		case err := <-kcmExited:
			// Tests that need GC or namespace deletion will now time out;
			// say so loudly, but keep the apiserver for the rest.
			s.say("controller-manager child exited unexpectedly: %v", err)
			s.kcm.exited <- err
			kcmExited = nil
		}
	}
}

// shutdown stops whatever run started, in reverse order, and removes the
// work directory's contents unless --keep-dir.
func (s *server) shutdown() {
	if s.apiStarted {
		select {
		case <-s.apiDone:
		default:
			// A real signal already reached the apiserver's own handler;
			// a second one (RequestShutdown) would make it os.Exit(1).
			if !s.bySignal {
				genericapiserver.RequestShutdown()
			}
		}
	}
	if s.kcm != nil {
		if p, err := os.FindProcess(s.kcm.pid); err == nil {
			_ = p.Signal(syscall.SIGTERM)
			select {
			case <-s.kcm.exited:
			case <-time.After(10 * time.Second):
				_ = p.Kill()
				<-s.kcm.exited
			}
		}
	}
	if s.apiStarted {
		select {
		case <-s.apiDone:
		case <-time.After(30 * time.Second):
			s.say("kube-apiserver did not stop within 30s")
		}
	}
	if s.etcdEnd != nil {
		closed := make(chan struct{})
		go func() { s.etcdEnd(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			s.say("etcd did not close within 10s")
		}
	}
	if !s.o.keepDir {
		for _, name := range []string{"pki", "etcd", "kubeconfig", "state.json", "testcp.log"} {
			_ = os.RemoveAll(filepath.Join(s.dir, name))
		}
		if s.o.readyFile != "" {
			_ = os.Remove(s.o.readyFile)
		}
		_ = os.Remove(s.dir) // only if nothing else is left in it
	}
}
