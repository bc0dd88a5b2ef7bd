//go:build !unit

package lke_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// The recordings are real Linode API answers (see testdata/linode-api/README.md).
type recording struct {
	Source       string        `json:"source"`
	Interactions []interaction `json:"interactions"`
}

type interaction struct {
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	RequestBody json.RawMessage `json:"request_body"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
}

// replayable matches the recorded requests the emulator serves; creating and
// deleting clusters and pools, and the version catalogue, are not part of it.
var replayable = regexp.MustCompile(`^/v4(beta)?/lke/clusters(/(\d+)(/(kubeconfig|pools|recycle|regenerate|servicetoken|api-endpoints))?)?(\?.*)?$`)

// Fields the emulator adds that only some recordings carry (newer API answers).
var allowedExtraFields = map[string]bool{"locks": true}

func TestAccEmulatorAnswersLikeTheRecordings(t *testing.T) {
	files, err := filepath.Glob("testdata/linode-api/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in testdata/linode-api: %v", err)
	}
	c := env.Clusters()[1]
	client := rawClient(t)
	replayed := 0
	for _, file := range files {
		var rec recording
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			for i, in := range rec.Interactions {
				m := replayable.FindStringSubmatch(in.Path)
				if m == nil {
					continue
				}
				creates := in.Method == http.MethodPost && (m[2] == "" || m[5] == "pools")
				if creates || (in.Method == http.MethodDelete && m[4] == "") {
					continue
				}
				path := in.Path
				if m[3] != "" && in.Status != http.StatusNotFound {
					path = strings.Replace(path, "/clusters/"+m[3], fmt.Sprintf("/clusters/%d", c.ID), 1)
				}
				notReady := in.Status == http.StatusServiceUnavailable && m[5] == "kubeconfig"
				if notReady {
					// Put the cluster in the state the recording was made in:
					// a kubeconfig regeneration under way.
					c.SetKubeconfigDelay(time.Hour)
					doRequest(t, client, http.MethodDelete, strings.Replace(path, "?", "", 1), nil)
				} else if m[5] == "kubeconfig" && in.Method == http.MethodGet {
					c.SetKubeconfigDelay(0)
					waitServed(t, client, path)
				}
				status, body := doRequest(t, client, in.Method, path, in.RequestBody)
				replayed++
				where := fmt.Sprintf("interaction %d (%s %s)", i, in.Method, in.Path)
				if status != in.Status {
					t.Errorf("%s: status %d, recorded %d; body %s", where, status, in.Status, body)
					continue
				}
				var want, got any
				if err := json.Unmarshal(in.Body, &want); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Errorf("%s: body is not JSON: %s", where, body)
					continue
				}
				for _, d := range compareShape("body", want, got) {
					t.Errorf("%s: %s", where, d)
				}
				if status >= 400 {
					if !bytes.Equal(mustCompact(in.Body), mustCompact(body)) {
						t.Errorf("%s: error body %s, recorded %s", where, body, in.Body)
					}
				}
				if m[5] == "kubeconfig" && in.Method == http.MethodGet && status == http.StatusOK {
					compareKubeconfigs(t, where, want, got, c.ID)
				}
			}
		})
	}
	c.SetKubeconfigDelay(0)
	if replayed < 15 {
		t.Fatalf("replayed only %d recorded interactions", replayed)
	}
}

// compareShape reports where got differs from the recording in field names
// or JSON types. Arrays are compared by their first elements.
func compareShape(at string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: object recorded, got %T", at, got)}
		}
		var diffs []string
		for _, k := range sortedKeys(w) {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", at, k))
				continue
			}
			diffs = append(diffs, compareShape(at+"."+k, w[k], gv)...)
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok && !allowedExtraFields[k] {
				diffs = append(diffs, fmt.Sprintf("%s.%s: not in the recording", at, k))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: array recorded, got %T", at, got)}
		}
		if len(w) > 0 && len(g) > 0 {
			return compareShape(at+"[0]", w[0], g[0])
		}
		return nil
	case nil:
		return nil // recorded null (e.g. an instance_id not yet assigned) fits any type
	default:
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: %T recorded, got %T", at, want, got)}
		}
		return nil
	}
}

// compareKubeconfigs checks the served kubeconfig against the recorded one:
// same cluster, user and context naming, a bearer token, a CA, namespace default.
func compareKubeconfigs(t *testing.T, where string, want, got any, clusterID int) {
	t.Helper()
	decode := func(v any) *clientcmdConfig {
		b, err := base64.StdEncoding.DecodeString(v.(map[string]any)["kubeconfig"].(string))
		if err != nil {
			t.Fatalf("%s: kubeconfig not base64: %v", where, err)
		}
		cfg, err := clientcmd.Load(b)
		if err != nil {
			t.Fatalf("%s: kubeconfig does not load: %v", where, err)
		}
		ctx := cfg.Contexts[cfg.CurrentContext]
		if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
			t.Fatalf("%s: kubeconfig current context is incomplete", where)
		}
		return &clientcmdConfig{
			context: cfg.CurrentContext, cluster: ctx.Cluster, user: ctx.AuthInfo, namespace: ctx.Namespace,
			hasCA:    len(cfg.Clusters[ctx.Cluster].CertificateAuthorityData) > 0,
			hasToken: cfg.AuthInfos[ctx.AuthInfo].Token != "",
			contexts: len(cfg.Contexts), clusters: len(cfg.Clusters), users: len(cfg.AuthInfos),
		}
	}
	w, g := decode(want), decode(got)
	recordedID := strings.TrimPrefix(w.cluster, "lke")
	ours := fmt.Sprint(clusterID)
	w.context = strings.ReplaceAll(w.context, recordedID, ours)
	w.cluster = strings.ReplaceAll(w.cluster, recordedID, ours)
	w.user = strings.ReplaceAll(w.user, recordedID, ours)
	if *w != *g {
		t.Errorf("%s: kubeconfig %+v, recorded (renumbered) %+v", where, *g, *w)
	}
}

type clientcmdConfig struct {
	context, cluster, user, namespace string
	hasCA, hasToken                   bool
	contexts, clusters, users         int
}

func rawClient(t *testing.T) *http.Client {
	t.Helper()
	return env.Emulator.HTTPClient(true)
}

func doRequest(t *testing.T, client *http.Client, method, path string, body json.RawMessage) (int, []byte) {
	t.Helper()
	var r io.Reader
	if len(body) > 0 && string(body) != "null" {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, env.Emulator.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.Emulator.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, b
}

func waitServed(t *testing.T, client *http.Client, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if status, _ := doRequest(t, client, http.MethodGet, path, nil); status == http.StatusOK {
			return
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			return
		}
	}
	t.Fatalf("%s never answered 200", path)
}

func mustCompact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
