package lke

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Endpoints of the emulated Linode API, as keys for fault injection and the
// request log (method and path pattern without the /v4 or /v4beta prefix).
const (
	EndpointListClusters     = "GET /lke/clusters"
	EndpointGetCluster       = "GET /lke/clusters/{id}"
	EndpointGetKubeconfig    = "GET /lke/clusters/{id}/kubeconfig"
	EndpointDeleteKubeconfig = "DELETE /lke/clusters/{id}/kubeconfig"
	EndpointRegenerate       = "POST /lke/clusters/{id}/regenerate"
	EndpointDeleteServiceTok = "DELETE /lke/clusters/{id}/servicetoken"
	EndpointListPools        = "GET /lke/clusters/{id}/pools"
	EndpointGetPool          = "GET /lke/clusters/{id}/pools/{pool}"
	EndpointRecycleCluster   = "POST /lke/clusters/{id}/recycle"
	EndpointRecyclePool      = "POST /lke/clusters/{id}/pools/{pool}/recycle"
	EndpointListAPIEndpoints = "GET /lke/clusters/{id}/api-endpoints"
)

// Fault is one programmed answer of an endpoint (fakecloud.Fault).
type Fault = fakecloud.Fault

// RequestRecord is one request the emulator received (fakecloud.RequestRecord).
type RequestRecord = fakecloud.RequestRecord

// InjectFaults queues faults for an endpoint: each following request to it
// takes the next one, in order; when the queue is empty requests are served
// normally again.
func (e *Emulator) InjectFaults(endpoint string, faults ...Fault) {
	e.faults.Push(endpoint, faults)
}

// InjectClusterFaults queues faults for an endpoint of one cluster only, so
// that tests on other clusters can run meanwhile. They are taken before any
// queued with InjectFaults.
func (e *Emulator) InjectClusterFaults(clusterID int, endpoint string, faults ...Fault) {
	e.faults.Push(clusterFaultKey(clusterID, endpoint), faults)
}

func clusterFaultKey(clusterID int, endpoint string) string {
	return endpoint + "#" + strconv.Itoa(clusterID)
}

// ClearFaults drops every queued fault.
func (e *Emulator) ClearFaults() { e.faults.Clear() }

// Requests returns the requests received so far, oldest first.
func (e *Emulator) Requests() []RequestRecord {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return append([]RequestRecord(nil), e.log...)
}

// CountRequests counts the requests received for an endpoint ("" counts all).
func (e *Emulator) CountRequests(endpoint string) int {
	return e.CountClusterRequests(0, endpoint)
}

// CountClusterRequests counts the requests for an endpoint ("" for all) about
// one cluster (0 for any).
func (e *Emulator) CountClusterRequests(clusterID int, endpoint string) int {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	n := 0
	for _, r := range e.log {
		if (endpoint == "" || r.Endpoint == endpoint) && (clusterID == 0 || r.ClusterID == clusterID) {
			n++
		}
	}
	return n
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.log = nil
}

// maintenanceReason is what the API says during a maintenance event, in the
// X-Maintenance-Mode header and the error body (the header's value as
// linodego's tests of its maintenance handling record it).
const maintenanceReason = "Currently in maintenance mode."

func writeMaintenance(w http.ResponseWriter, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = 20 * time.Second
	}
	w.Header().Set("X-Maintenance-Mode", maintenanceReason)
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	writeLinodeError(w, http.StatusServiceUnavailable, maintenanceReason)
}

// PendingFaults counts the faults still queued for an endpoint of a cluster
// (0 for those queued for every cluster).
func (e *Emulator) PendingFaults(clusterID int, endpoint string) int {
	if clusterID == 0 {
		return e.faults.Pending(endpoint)
	}
	return e.faults.Pending(clusterFaultKey(clusterID, endpoint))
}

// ClearClusterFaults drops the faults queued for one cluster.
func (e *Emulator) ClearClusterFaults(clusterID int) {
	e.faults.ClearSuffix("#" + strconv.Itoa(clusterID))
}

func (e *Emulator) record(entry RequestRecord) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.log = append(e.log, entry)
}

// KubeRequests returns the requests made to the clusters' API endpoints (the
// proxies the served kubeconfigs name), oldest first.
func (e *Emulator) KubeRequests() []RequestRecord {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return append([]RequestRecord(nil), e.kubeLog...)
}
