package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
)

// newHTTPClient returns the client for the auth calls and, through the
// proxy, the API: http.DefaultTransport's settings, with the roots of
// -cacert or no check at all with -insecure-skip-verify (see
// warnInsecure), and enough idle connections for a busy proxy.
func newHTTPClient(o *options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = tr.MaxIdleConns
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	switch {
	case o.cacert != "":
		pool, err := loadRoots(o.cacert)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	case o.insecure:
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	return &http.Client{Transport: tr}, nil
}

// warnInsecure warns, with -insecure-skip-verify, that the certificate is
// not checked.
func (o *options) warnInsecure(p *process) {
	if o.insecure {
		p.warn("-insecure-skip-verify: the server's certificate is not checked, " +
			"so anyone on the network path could read the password and the token; use -cacert FILE instead")
	}
}

// loadRoots reads the PEM certificates in file into a new pool.
func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("-cacert: %v; give a PEM file with the server's CA certificate", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("-cacert: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}
