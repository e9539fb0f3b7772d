// Command vcsim runs VMware's govmomi simulator (Debian's golang-github-vmware-govmomi-dev) on a
// loopback port for labsync's conformance suite (tests/vcsim.rs).
//
// Flags: -listen ADDR (default 127.0.0.1:0), -username U (default labsync), -tls, -ca-out FILE,
// -vms N (VMs per host and per cluster pool, for benchmarks).
// The password comes from env VCSIM_PASSWORD (default labsync), never argv.
// Prints "url: <URL>" as its first stdout line (and "thumbprint: AB:CD:…", the SHA-256 of the
// certificate DER, with -tls), then serves until SIGINT/SIGTERM.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

// newCert makes a throwaway CA and a leaf for 127.0.0.1/localhost signed by it, so a client can
// verify the leaf either by pinning its thumbprint or by trusting the CA file.
func newCert() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vcsim test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	user := flag.String("username", "labsync", "the only accepted user name")
	useTLS := flag.Bool("tls", false, "serve https with a generated certificate")
	caOut := flag.String("ca-out", "", "with -tls, write the signing CA certificate (PEM) here")
	vms := flag.Int("vms", 2, "VMs per host and per cluster resource pool (the VPX model has 2 of each: 2*vms VMs)")
	flag.Parse()
	password := os.Getenv("VCSIM_PASSWORD")
	if password == "" {
		password = "labsync"
	}

	model := simulator.VPX()
	model.Machine = *vms
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, password)}
	thumbprint := ""
	if *useTLS {
		cert, caPEM, err := newCert()
		if err != nil {
			log.Fatal(err)
		}
		if *caOut != "" {
			if err := os.WriteFile(*caOut, caPEM, 0o644); err != nil {
				log.Fatal(err)
			}
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		sum := sha256.Sum256(cert.Certificate[0])
		hexes := make([]string, len(sum))
		for i, b := range sum {
			hexes[i] = fmt.Sprintf("%02X", b)
		}
		thumbprint = strings.Join(hexes, ":")
	}
	server := model.Service.NewServer()
	u := *server.URL
	u.User = nil // never print the credentials
	fmt.Printf("url: %s\n", u.String())
	if thumbprint != "" {
		fmt.Printf("thumbprint: %s\n", thumbprint)
	}
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	server.Close()
}
