package lke

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
)

// auditPolicy makes kube-apiserver write, in its audit log, every credential
// it hands out: TokenRequest answers (short-lived tokens) and the token
// secrets as created or filled (legacy tokens, LKE's and users'). Tests read
// them back with Credentials, to search files for them.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: RequestResponse
  resources:
  - group: ""
    resources: ["serviceaccounts/token"]
- level: RequestResponse
  verbs: ["create", "update", "patch"]
  resources:
  - group: ""
    resources: ["secrets"]
- level: None
`

func writeAuditPolicy(dir string) (policy, log string, err error) {
	policy, log = filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	return policy, log, os.WriteFile(policy, []byte(auditPolicy), 0o600)
}

// Credentials returns every token the cluster's API server has issued or
// stored in a token secret so far (from its audit log), without duplicates.
func (c *Cluster) Credentials() ([]string, error) {
	f, err := os.Open(c.cp.auditLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var event struct {
			ObjectRef struct {
				Resource    string `json:"resource"`
				Subresource string `json:"subresource"`
			} `json:"objectRef"`
			ResponseObject struct {
				Status struct {
					Token string `json:"token"`
				} `json:"status"`
				Data struct {
					Token string `json:"token"`
				} `json:"data"`
			} `json:"responseObject"`
		}
		if json.Unmarshal(scanner.Bytes(), &event) != nil {
			continue
		}
		if t := event.ResponseObject.Status.Token; t != "" {
			seen[t] = true
		}
		if b64 := event.ResponseObject.Data.Token; b64 != "" {
			if t, err := base64.StdEncoding.DecodeString(b64); err == nil && len(t) > 0 {
				seen[string(t)] = true
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	// The admin tokens of the served kubeconfigs are among them already
	// (they are token secrets too); the cluster's own record is added in
	// case the audit log missed a write.
	for _, kc := range c.servedTokens() {
		seen[kc] = true
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}
