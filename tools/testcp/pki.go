package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"time"
)

// pkiPaths names every file written under <dir>/pki.
type pkiPaths struct {
	Dir          string `json:"dir"`
	CACert       string `json:"caCert"`
	CAKey        string `json:"caKey"`
	APIServerCrt string `json:"apiserverCert"`
	APIServerKey string `json:"apiserverKey"`
	AdminCert    string `json:"adminCert"`
	AdminKey     string `json:"adminKey"`
	SAKey        string `json:"serviceAccountKey"`
	SAPub        string `json:"serviceAccountPub"`
	WebhookCert  string `json:"webhookCert"`
	WebhookKey   string `json:"webhookKey"`
}

func newPKIPaths(dir string) pkiPaths {
	p := filepath.Join(dir, "pki")
	return pkiPaths{
		Dir:          p,
		CACert:       filepath.Join(p, "ca.crt"),
		CAKey:        filepath.Join(p, "ca.key"),
		APIServerCrt: filepath.Join(p, "apiserver.crt"),
		APIServerKey: filepath.Join(p, "apiserver.key"),
		AdminCert:    filepath.Join(p, "admin.crt"),
		AdminKey:     filepath.Join(p, "admin.key"),
		SAKey:        filepath.Join(p, "sa.key"),
		SAPub:        filepath.Join(p, "sa.pub"),
		WebhookCert:  filepath.Join(p, "webhook.crt"),
		WebhookKey:   filepath.Join(p, "webhook.key"),
	}
}

// issuer is a CA that can sign leaf certificates.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

const certLifetime = 7 * 24 * time.Hour

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writePair writes a certificate (0644) and its PKCS#8 key (0600).
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kp, err := pemKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, kp, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pemCert(der), 0o644)
}

func newCA(p pkiPaths) (*issuer, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "testcp-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePair(p.CACert, p.CAKey, der, key); err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key}, nil
}

type leafSpec struct {
	cn   string
	orgs []string
	eku  []x509.ExtKeyUsage
	dns  []string
	ips  []net.IP
}

func (ca *issuer) issue(s leafSpec, certPath, keyPath string) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, der, key)
}

// writePKI generates the whole throwaway PKI under <dir>/pki.
func writePKI(p pkiPaths) error {
	ca, err := newCA(p)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	loopback := net.ParseIP("127.0.0.1")
	if err := ca.issue(leafSpec{
		cn:  "kube-apiserver",
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		ips: []net.IP{loopback, net.ParseIP("10.0.0.1")},
	}, p.APIServerCrt, p.APIServerKey); err != nil {
		return fmt.Errorf("apiserver certificate: %w", err)
	}
	if err := ca.issue(leafSpec{
		cn:   "testcp-admin",
		orgs: []string{"system:masters"},
		eku:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, p.AdminCert, p.AdminKey); err != nil {
		return fmt.Errorf("admin certificate: %w", err)
	}
	if err := ca.issue(leafSpec{
		cn:  "testcp-webhook",
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: []string{"localhost"},
		ips: []net.IP{loopback},
	}, p.WebhookCert, p.WebhookKey); err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}

	// Service-account token signing pair.
	sa, err := newKey()
	if err != nil {
		return err
	}
	saPriv, err := pemKey(sa)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(p.SAKey, saPriv, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(p.SAPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}
