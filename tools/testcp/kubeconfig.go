package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so readers never see a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return os.Rename(name, path)
}

// writeKubeconfig writes an admin kubeconfig with every credential inline.
func writeKubeconfig(path string, p pkiPaths, port int) error {
	b64 := func(f string) (string, error) {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(data), nil
	}
	ca, err := b64(p.CACert)
	if err != nil {
		return err
	}
	crt, err := b64(p.AdminCert)
	if err != nil {
		return err
	}
	key, err := b64(p.AdminKey)
	if err != nil {
		return err
	}
	// 127.0.0.1, not localhost: the server listens on IPv4 only.
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testcp
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority-data: %s
users:
- name: testcp-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: testcp
  context:
    cluster: testcp
    user: testcp-admin
current-context: testcp
`, port, ca, crt, key)
	return writeFileAtomic(path, []byte(kc), 0o600)
}

// state is what state.json records about a running instance.
type state struct {
	PID            int      `json:"pid"`
	KCMPID         int      `json:"kcmPid,omitempty"`
	Dir            string   `json:"dir"`
	Kubeconfig     string   `json:"kubeconfig"`
	Server         string   `json:"server"`
	APIServerPort  int      `json:"apiserverPort"`
	EtcdClientPort int      `json:"etcdClientPort"`
	EtcdPeerPort   int      `json:"etcdPeerPort"`
	Controllers    string   `json:"controllers"`
	Log            string   `json:"log"`
	PKI            pkiPaths `json:"pki"`
	Versions       versions `json:"versions"`
	APIServerArgs  []string `json:"apiserverArgs"`
	KCMArgs        []string `json:"kcmArgs,omitempty"`
	StartSeconds   float64  `json:"startSeconds"`
}

func writeState(path string, s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'), 0o600)
}
