package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// apiserverArgs is the fixed kube-apiserver command line; extra arguments are
// appended last, so a repeated scalar flag overrides the default.
func apiserverArgs(o *serveOptions, p pkiPaths, port, etcdClientPort int) []string {
	args := []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClientPort),
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		// Required: otherwise the apiserver looks for a host interface with a
		// default route, which an offline machine may not have.
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + p.APIServerCrt,
		"--tls-private-key-file=" + p.APIServerKey,
		"--client-ca-file=" + p.CACert,
		"--authorization-mode=RBAC",
		fmt.Sprintf("--service-account-issuer=https://127.0.0.1:%d", port),
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// The reconciler would try to publish 127.0.0.1 in the kubernetes
		// Endpoints, which validation refuses for loopback addresses.
		"--endpoint-reconciler-type=none",
		"--shutdown-delay-duration=0s",
		"--profiling=false",
	}
	if o.controllers == "none" {
		// No serviceaccount controller, so no "default" ServiceAccount: Pod
		// creation would be refused by this admission plugin.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	return append(args, o.apiserverArgs...)
}

// startAPIServer builds the one kube-apiserver command this process may ever
// construct (construction installs the process-wide signal handler) and runs
// it in a goroutine. The channel receives Execute's result.
func startAPIServer(args []string) <-chan error {
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()
	return done
}

// adminHTTPClient trusts the testcp CA and presents the admin certificate.
func adminHTTPClient(p pkiPaths) (*http.Client, error) {
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", p.CACert)
	}
	admin, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy: nil, // loopback only, never through a proxy
			TLSClientConfig: &tls.Config{
				RootCAs:      pool,
				Certificates: []tls.Certificate{admin},
				MinVersion:   tls.VersionTLS12,
			},
		},
	}, nil
}

// getOK reports whether GET url answered 200, and a short description of
// what it saw otherwise.
func getOK(ctx context.Context, c *http.Client, url string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, fmt.Sprintf("%s: %s", resp.Status, body)
}

// waitFor polls url until it answers 200, the deadline passes, or one of the
// abort channels fires (a component that exited early).
func waitFor(c *http.Client, url string, deadline time.Time, what string, abort func() error) error {
	last := "no answer yet"
	for {
		if err := abort(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, msg := getOK(ctx, c, url)
		cancel()
		if ok {
			return nil
		}
		last = msg
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready before the deadline; last answer from %s: %s", what, url, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
