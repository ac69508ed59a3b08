package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// kcmControllers are the only controllers the child runs: enough for
// ownerReference cascades, namespace deletion, the "default"
// ServiceAccount and the kube-root-ca.crt ConfigMap.
const kcmControllers = "garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller"

// kcmMain is the child mode: a plain kube-controller-manager with the given
// flags. It lives in its own process because it shares global feature-gate,
// logging and signal state with kube-apiserver.
func kcmMain(args []string) int {
	cmd := app.NewControllerManagerCommand()
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func kcmArgs(dir string, p pkiPaths, kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig, // admin credential, so GC may touch every resource
		"--controllers=" + kcmControllers,
		"--root-ca-file=" + p.CACert,
		"--leader-elect=false",
		"--secure-port=0", // serve no HTTPS at all: no delegated authn/authz needed
		"--use-service-account-credentials=false",
	}
}

// kcmChild is a running controller-manager child.
type kcmChild struct {
	pid    int
	exited chan error // receives the child's Wait result once
}

// startKCM re-executes this binary in kcm mode. Pdeathsig makes the kernel
// send SIGTERM to the child when the thread that forked it dies, so the
// fork and the Wait both happen on one goroutine locked to its OS thread for
// the child's whole life: the Go runtime can then never retire that thread
// early.
func startKCM(args []string, log *os.File) (*kcmChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	ch := &kcmChild{exited: make(chan error, 1)}
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when this goroutine ends, its thread ends too.
		c := exec.Command(self, append([]string{"kcm"}, args...)...)
		c.Stdout = log
		c.Stderr = log
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := c.Start(); err != nil {
			started <- err
			return
		}
		ch.pid = c.Process.Pid
		started <- nil
		ch.exited <- c.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start controller-manager child: %w", err)
	}
	return ch, nil
}
