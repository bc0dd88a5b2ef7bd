package provider

// The leak scanner's matching, apart from the suite-wide capture (in
// leakscan_test.go) so that the unit tier tests it too.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	jwtShape        = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	hex64Shape      = regexp.MustCompile(`[0-9a-f]{64}`)
	privateKeyShape = regexp.MustCompile(`PRIVATE KEY-----`)
	// base64 of "-----BEGIN", as kubeconfigs embed PEM (client-key-data).
	base64PEMShape = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]{20,}`)
	// A run long enough to hide a credential in base64: the Linode API
	// sends kubeconfigs so ({"kubeconfig": "YXBpVmVyc2lvbjog…"}), and a log
	// line or state holding one would show no token in plain text.
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{64,}={0,2}`)
	// hashicorp/kubernetes (and helm, which embeds it) log their bearer token
	// at DEBUG/TRACE themselves; those lines are theirs, not ours (see the
	// kubernetes-and-helm guide).
	//
	// terraform itself logs the stored value of a dynamic attribute at DEBUG
	// when it upgrades a resource's state; the only dynamic attribute here is
	// the echo provider's, which holds what a test echoed on purpose.
	foreignProviderLine = regexp.MustCompile(`provider\.terraform-provider-(kubernetes|helm)|UpgradeResourceState: ignoring dynamic block`)
)

// registeredSecrets are secrets the tests put where the provider reads them
// (a proxy URL's password, a plugin's environment, a file the
// configuration names) that the local LKE does not know: the scan searches
// for them too, as they are.
var registeredSecrets sync.Map

// secretForLeakScan has the suite-wide scan search for value.
func secretForLeakScan(value, what string) { registeredSecrets.Store(value, what) }

func findLeaks(name string, raw []byte, secrets map[string]string) []string {
	return findLeaksIn(name, raw, secrets, true)
}

// freeForm are the secrets that have no shape to find them by (a proxy's
// password, a value a plugin's environment carries, the content of a file
// the configuration names): each is searched for as it is.
func freeForm(secrets map[string]string) []string {
	var out []string
	for s := range secrets {
		if len(s) >= 8 && !jwtShape.MatchString(s) && !hex64Shape.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// findLeaksIn scans raw line by line; with decode, it scans the base64
// runs of each line again, decoded (once: a kubeconfig in base64 in JSON).
func findLeaksIn(name string, raw []byte, secrets map[string]string, decode bool) []string {
	var hits []string
	plain := freeForm(secrets)
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines {
		if foreignProviderLine.Match(line) {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		for _, s := range plain {
			if bytes.Contains(line, []byte(s)) {
				hits = append(hits, where+": "+secrets[s])
			}
		}
		if decode {
			for _, m := range base64Run.FindAll(line, -1) {
				if base64PEMShape.Match(m) {
					continue // found as a PEM below
				}
				if plain, err := base64.StdEncoding.DecodeString(string(m[:len(m)/4*4])); err == nil {
					hits = append(hits, findLeaksIn(where+" (base64)", plain, secrets, false)...)
				}
			}
		}
		for _, m := range jwtShape.FindAll(line, -1) {
			if what, ok := secrets[string(m)]; ok {
				hits = append(hits, where+": "+what)
			} else {
				hits = append(hits, where+": a JWT-shaped string")
			}
		}
		for _, m := range hex64Shape.FindAll(line, -1) {
			if what, ok := secrets[string(m)]; ok {
				hits = append(hits, where+": "+what)
			}
		}
		if privateKeyShape.Match(line) {
			hits = append(hits, where+": a private key")
		}
		for _, m := range base64PEMShape.FindAll(line, -1) {
			head := m[:len(m)/4*4]
			if len(head) > 80 {
				head = head[:80]
			}
			if pem, err := base64.StdEncoding.DecodeString(string(head)); err == nil && bytes.Contains(pem, []byte("PRIVATE KEY")) {
				hits = append(hits, where+": a private key (base64, as in a kubeconfig)")
			}
		}
	}
	return hits
}

// The scanner itself: it must see a known credential, an unknown JWT and a
// private key, in plain text and in the forms files hold them (JSON-escaped,
// base64 in a kubeconfig), and nothing in a clean line.
func TestLeakScannerFindsWhatItLooksFor(t *testing.T) {
	token := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVz"
	linode := strings.Repeat("ab12", 16)
	const proxyPassword, pluginSecret, fileContent = "correct-horse-proxy", "plugin-env-value-7", "federated-not-a-jwt-42"
	secrets := map[string]string{token: "a token", linode: "the Linode API token",
		proxyPassword: "a proxy password", pluginSecret: "a plugin's environment", fileContent: "a file's content"}
	for _, tc := range []struct {
		line string
		want int
	}{
		{`{"token":"` + token + `"}`, 1},
		{`Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzb21lb25lIGVsc2UifQ.b3RoZXItc2lnbmF0dXJl`, 1},
		{`LINODE_TOKEN=` + linode, 1},
		{`-----BEGIN EC PRIVATE KEY-----`, 1},
		{`client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVF`, 1},
		{`client-key-data: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VB`, 1},
		{`kubeconfig_sha256 = "` + strings.Repeat("0f", 32) + `"`, 0},
		// The Linode API's wire form: the kubeconfig in base64, in JSON.
		{`{"kubeconfig":"` + base64.StdEncoding.EncodeToString([]byte("users:\n- name: lke1-admin\n  user:\n    token: "+token+"\n")) + `"}`, 1},
		{`"` + base64.StdEncoding.EncodeToString([]byte("export LINODE_TOKEN="+linode+"\n")) + `"`, 1},
		{`"` + base64.StdEncoding.EncodeToString([]byte("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")) + `"`, 0},
		{`rotation step: delete service-account-token secrets: cluster_id=100001 deleted=3`, 0},
		// Secrets with no shape, registered by the tests that use them:
		// found only because they are searched for as they are.
		{`proxy_url = "http://ops:` + proxyPassword + `@proxy.example:3128"`, 1},
		{`exec env: PLUGIN_SECRET=` + pluginSecret, 1},
		{`read from the federated token file: ` + fileContent, 1},
		{`"` + base64.StdEncoding.EncodeToString([]byte("proxy: http://ops:"+proxyPassword+"@proxy.example.internal:3128")) + `"`, 1},
		{`proxy_url = "http://ops:xxxxx@proxy.example:3128"`, 0},
	} {
		if got := len(findLeaks("f", []byte(tc.line), secrets)); got != tc.want {
			t.Errorf("%d hits in %q, want %d", got, tc.line, tc.want)
		}
	}
}
