package cluster_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/pcm"
)

// Parameters of the kill test.
const (
	killWorkers    = 6
	killBefore     = 120              // acknowledged operations before the kill
	killAfter      = 120              // and after it
	killLease      = 4 * time.Second  // --job-lease and --pcm-lease of the instances
	killSettle     = 90 * time.Second // how long the survivors may take to finish the dead one's work
	retryAttempts  = 60               // a client gives up on a request after this many tries
	retryPause     = 100 * time.Millisecond
	receiverDelay  = 300 * time.Millisecond // the receivers' latency: deliveries are in flight at the kill
	replaySample   = 40                     // acknowledged requests replayed per kind after the run
	pcmReportStep  = `{"step":"AUTHENTICATED","data":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"}}`
	ticketDocument = "47742663023"
)

// acked is one acknowledged write: its idempotency key (or externalId),
// the request, the id the answer named, and whether it took retries.
type acked struct {
	kind, key, id string
	body          []byte
	retried       bool
}

// dedupReceiver counts deliveries by identity: the first is the effect,
// later ones are duplicates by delivery (at-least-once), which a receiver
// that dedups by id absorbs.
type dedupReceiver struct {
	mu         sync.Mutex
	seen       map[string]int
	duplicates int
}

func (r *dedupReceiver) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.seen[id]++
	if r.seen[id] > 1 {
		r.duplicates++
	}
}

func (r *dedupReceiver) counts() (unique, duplicates int, ids map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids = make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		ids[k] = v
	}
	return len(r.seen), r.duplicates, ids
}

// TestKillUnderMixedLoad: three instances behind HAProxy under a mixed load
// of partners' writes — consent-flow tickets redeemed by the WebView (each
// redemption a webhook delivery to a receiver run here), journey sessions,
// payment consents and PCM reports on them (each a PCM item forwarded to a
// PCM receiver run here), and one-cent sweeping transfers under a consent
// Maria approved through the balancer (each settled by jobs on both sides)
// — each with its idempotency key (journey sessions and transfers: their
// externalId). One instance is killed with SIGKILL mid-load; clients
// retry what failed or went unanswered, with the same key, through HAProxy.
// Afterwards, read from PostgreSQL directly: every acknowledged write is
// there once (one row per key; each transfer ACSC, paid once at the holder,
// the ledger moved by exactly one cent each), replays answer the same id, the jobs and PCM
// batches the dead instance held are finished by the survivors once their
// lease ends, and each webhook-id and PCM item reached its receiver's effect
// exactly once.
func TestKillUnderMixedLoad(t *testing.T) {
	var hooks, items dedupReceiver
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(receiverDelay)
		hooks.add(r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hookSrv.Close()
	pcmRecv := &pcm.Receiver{Refuse: func(endpoint string, item map[string]any) string {
		items.add(fmt.Sprintf("%s|%v|%v", endpoint, item["consentId"], item["type"]))
		return ""
	}}
	pcmSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * receiverDelay) // a batch every 2 s per instance: often held when the kill comes
		pcmRecv.ServeHTTP(w, r)
	}))
	defer pcmSrv.Close()

	c := newCluster(t, 3, "--job-lease", killLease.String(), "--pcm-lease", killLease.String(), "--pcm-url", pcmSrv.URL)
	client := newClient(killWorkers)
	ctx := t.Context()
	tok, err := token(ctx, client, c.URL, c.ClientID, c.ClientSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	if status, body, err := send(ctx, client, http.MethodPost, c.URL+"/webhooks/v1/subscriptions", tok,
		[]byte(`{"url":"`+hookSrv.URL+`"}`), nil); err != nil || status != http.StatusCreated {
		t.Fatalf("webhook subscription: %d %s %v", status, body, err)
	}

	db, err := sql.Open("pgx", c.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Payments: a sweeping consent with room for every transfer of the run,
	// approved by Maria with every step through the balancer.
	if _, err := c.CLI(ctx, "journeys", "create", "--alias", "bulk", "--name", "Bulk",
		"--setting", `SWEEPING_CONFIGURATION={"transactionLimit":"500.00","periodicLimits":{"day":{"quantityLimit":100000}}}`); err != nil {
		t.Fatal(err)
	}
	session := newPhone(t, c).approveSweeping(client, tok, "bulk", "approval", [7]string{c.URL, c.URL, c.URL, c.URL, c.URL, c.URL, c.URL})
	checking, savings := balanceCents(t, db, "1234567"), balanceCents(t, db, "23456789")
	// What the approval itself wrote: its ticket and the holder's PCM steps.
	ticketsBefore := count(t, db, `SELECT count(*) FROM consent_flow_tickets`)
	pcmBefore := count(t, db, `SELECT count(*) FROM pcm_events WHERE step = 'AUTHENTICATED'`)

	l := &mixedLoad{t: t, client: client, base: c.URL, tok: tok, session: session}
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for w := range killWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; runCtx.Err() == nil; i++ {
				l.one(runCtx, (w+i)%4)
			}
		}()
	}
	waitAcked := func(n int64) {
		for deadline := time.Now().Add(120 * time.Second); l.count.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) || l.failed() {
				stop()
				wg.Wait()
				t.Fatalf("%d operations acknowledged, want %d (problems: %v)", l.count.Load(), n, l.problemList())
			}
		}
	}
	waitAcked(killBefore)
	dead := c.Instances[1]
	pid := dead.Pid()
	// Kill when the instance holds a job (its pid is in lease_owner) and a
	// PCM batch is leased (by any instance: a lease names no instance), so
	// the takeover path is exercised, not left to chance.
	owner := fmt.Sprintf("%%:%d:%%", pid)
	holding := false
	for deadline := time.Now().Add(20 * time.Second); !holding && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		holding = count(t, db, `SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE $1`, owner) > 0 &&
			count(t, db, `SELECT count(*) FROM pcm_outbox WHERE lease IS NOT NULL AND state = 'PENDING'`) > 0
	}
	atKill := l.count.Load()
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	// What the dead instance held at its death (the PCM leases of all).
	heldJobs := ids(t, db, `SELECT id FROM jobs WHERE state = 'running' AND lease_owner LIKE $1`, owner)
	heldPCM := ids(t, db, `SELECT event_id FROM pcm_outbox WHERE lease IS NOT NULL AND state = 'PENDING'`)
	if !holding {
		t.Logf("in 20 s the instance never held a job while a PCM batch was leased: killed anyway (%d jobs, %d PCM items held)", len(heldJobs), len(heldPCM))
	}
	waitAcked(atKill + killAfter)
	stop()
	wg.Wait()
	if l.failed() {
		t.Fatalf("problems under load: %v", l.problemList())
	}

	// The survivors finish the dead instance's work once its leases end.
	var pendingHooks, pendingPCM, runningHeld, pendingTransfers int
	settled := false
	for deadline := time.Now().Add(killSettle); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		pendingHooks = count(t, db, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`)
		pendingPCM = count(t, db, `SELECT count(*) FROM pcm_outbox WHERE state = 'PENDING'`)
		runningHeld = count(t, db, `SELECT count(*) FROM jobs WHERE state <> 'completed' AND id = ANY($1)`, heldJobs)
		pendingTransfers = count(t, db, `SELECT count(*) FROM itp_payments WHERE status NOT IN ('ACSC', 'RJCT', 'CANC', 'FAILED')`)
		if pendingHooks == 0 && pendingPCM == 0 && runningHeld == 0 && pendingTransfers == 0 {
			settled = true
			break
		}
	}
	if !settled {
		t.Logf("PCM outbox: %q", ids(t, db, `SELECT DISTINCT state || ' attempts ' || attempts || ' next_at-now ' || (next_at - (extract(epoch from now())*1000)::bigint) || ' ' || last_error FROM pcm_outbox WHERE state = 'PENDING' LIMIT 5`))
		t.Fatalf("%s after the kill: %d webhook deliveries not delivered, %d PCM items not accepted, %d of the dead instance's %d jobs unfinished, %d transfers not final",
			time.Since(killedAt).Round(time.Second), pendingHooks, pendingPCM, runningHeld, len(heldJobs), pendingTransfers)
	}
	settleTook := time.Since(killedAt)
	if reasons := ids(t, db, `SELECT DISTINCT reason FROM pcm_outbox WHERE state = 'REJECTED'`); len(reasons) > 0 {
		t.Errorf("%d PCM items rejected by the receiver: %q", count(t, db, `SELECT count(*) FROM pcm_outbox WHERE state = 'REJECTED'`), reasons)
	}
	takenOver := count(t, db, `SELECT count(*) FROM jobs WHERE state = 'completed' AND attempt >= 2 AND id = ANY($1)`, heldJobs)
	if takenOver != len(heldJobs) {
		t.Errorf("%d of the %d jobs the dead instance held were completed on a later attempt", takenOver, len(heldJobs))
	}
	if n := count(t, db, `SELECT count(*) FROM pcm_outbox WHERE state = 'ACCEPTED' AND event_id = ANY($1)`, heldPCM); n != len(heldPCM) {
		t.Errorf("%d of the %d PCM items leased at the kill were accepted", n, len(heldPCM))
	}
	// Those the dead instance held were sent again after their lease.
	pcmRetaken := count(t, db, `SELECT count(*) FROM pcm_outbox WHERE attempts >= 2 AND event_id = ANY($1)`, heldPCM)

	// Every acknowledged write is there, once per key.
	demoID := ""
	if err := db.QueryRowContext(ctx, `SELECT id FROM applications WHERE client_id = $1`, c.ClientID).Scan(&demoID); err != nil {
		t.Fatal(err)
	}
	all := l.all()
	byKind := map[string][]acked{}
	for _, a := range all {
		byKind[a.kind] = append(byKind[a.kind], a)
	}
	found, missing := 0, 0
	check := func(kind, query string) {
		for _, a := range byKind[kind] {
			if n := count(t, db, query, a.id); n == 1 {
				found++
			} else {
				missing++
				t.Errorf("%s %s (key %s): %d rows, want 1", kind, a.id, a.key, n)
			}
		}
	}
	check("ticket", `SELECT count(*) FROM consent_flow_tickets WHERE ticket_id = $1`)
	check("session", `SELECT count(*) FROM itp_journey_sessions WHERE id = $1`)
	check("consent", `SELECT count(*) FROM payment_consents WHERE id = $1`)
	check("pcm", `SELECT count(*) FROM pcm_events WHERE id = $1`)
	check("transfer", `SELECT count(*) FROM itp_payments WHERE id = $1 AND status = 'ACSC'`)
	// No second effect: as many rows as keys.
	rows := map[string]int{
		"ticket":  count(t, db, `SELECT count(*) FROM consent_flow_tickets`) - ticketsBefore,
		"session": count(t, db, `SELECT count(*) FROM itp_journey_sessions WHERE application_id = $1 AND external_id LIKE 'kill-%'`, demoID),
		"consent": count(t, db, `SELECT count(*) FROM payment_consents WHERE application_id = $1`, demoID),
		"pcm":     count(t, db, `SELECT count(*) FROM pcm_events WHERE step = 'AUTHENTICATED'`) - pcmBefore,
		// Initiated once at Ponte's initiator side, and paid once at its holder side.
		"transfer":       count(t, db, `SELECT count(*) FROM itp_payments WHERE application_id = $1 AND external_id LIKE 'kt-%'`, demoID),
		"holder payment": count(t, db, `SELECT count(*) FROM recurring_payments`),
	}
	duplicated := 0
	byKind["holder payment"] = byKind["transfer"]
	for kind, n := range rows {
		if n != len(byKind[kind]) {
			duplicated += n - len(byKind[kind])
			t.Errorf("%s: %d rows for %d keys", kind, n, len(byKind[kind]))
		}
	}
	delete(byKind, "holder payment")
	// The money moved once per transfer: one cent each, from checking to savings.
	moved := int64(len(byKind["transfer"]))
	if got := checking - balanceCents(t, db, "1234567"); got != moved {
		t.Errorf("checking moved by %d cents for %d one-cent transfers", got, moved)
	}
	if got := balanceCents(t, db, "23456789") - savings; got != moved {
		t.Errorf("savings moved by %d cents for %d one-cent transfers", got, moved)
	}

	// Replays with the same key answer the same id: every retried write and a sample of the others.
	replayed := 0
	for kind, list := range byKind {
		n := 0
		for _, a := range list {
			if !a.retried && n >= replaySample {
				continue
			}
			n++
			replayed++
			id, err := l.replay(ctx, a)
			if err != nil || id != a.id {
				t.Errorf("replay of %s key %s: id %q (%v), want %q", kind, a.key, id, err, a.id)
			}
		}
	}

	// Webhooks and PCM items: each once to effect.
	hooksUnique, hooksDup, hookIDs := hooks.counts()
	for _, a := range byKind["ticket"] {
		if hookIDs["ticket-used-"+a.id] == 0 {
			t.Errorf("no webhook for the redemption of ticket %s", a.id)
		}
	}
	// Tickets' and transfers' events: every delivery Ponte recorded, once to effect.
	if want := count(t, db, `SELECT count(*) FROM webhook_deliveries`); hooksUnique != want {
		t.Errorf("%d distinct webhook-ids received, want %d (the deliveries recorded)", hooksUnique, want)
	}
	itemsUnique, itemsDup, _ := items.counts()
	if want := count(t, db, `SELECT count(*) FROM pcm_outbox`); itemsUnique != want {
		t.Errorf("%d distinct PCM items received, want %d (the outbox)", itemsUnique, want)
	}
	if itemsUnique < len(byKind["pcm"]) {
		t.Errorf("%d distinct PCM items received for %d reports", itemsUnique, len(byKind["pcm"]))
	}

	retried := 0
	for _, a := range all {
		if a.retried {
			retried++
		}
	}
	t.Logf("SIGKILL to %s (pid %d) after %d acknowledged operations; %d in all: %d tickets (each redeemed), %d journey sessions, %d payment consents, %d PCM reports, %d sweeping transfers (each ACSC, the ledger moved once each)",
		dead.Name, pid, atKill, len(all), len(byKind["ticket"]), len(byKind["session"]), len(byKind["consent"]), len(byKind["pcm"]), len(byKind["transfer"]))
	t.Logf("acknowledged %d, found %d, missing %d, duplicated %d; %d acknowledged only after retries (%d requests retried: %d transport errors, %d HAProxy 5xx, %d other); %d replays answered the first id",
		len(all), found, missing, duplicated, retried, l.retries.Load(), l.transportErrs.Load(), l.gateway.Load(), l.otherRetry.Load(), replayed)
	t.Logf("lease takeovers: %d jobs held by the dead instance completed by survivors; %d PCM items leased at the kill, all accepted, %d of them sent again after their lease; everything settled %s after the kill (leases %s)",
		takenOver, len(heldPCM), pcmRetaken, settleTook.Round(100*time.Millisecond), killLease)
	t.Logf("WebView redemptions answered 410 at the first try because HAProxy re-sent the GET after the instance that redeemed it died: %d",
		l.balancerResent.Load())
	t.Logf("webhooks: %d webhook-ids received once to effect, %d duplicate deliveries absorbed by the receiver; PCM: %d items once to effect, %d duplicate deliveries",
		hooksUnique, hooksDup, itemsUnique, itemsDup)

	// The killed instance starts again on the same database and key set and
	// takes its share of the traffic.
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	status, body, err := send(ctx, client, http.MethodPost, dead.URL+"/openfinance/consent-flow/ticket", tok,
		fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"%s"}`, uuid.NewString(), uuid.NewString(), ticketDocument),
		map[string]string{"idempotencyKey": uuid.NewString()})
	if err != nil || status != http.StatusCreated {
		t.Errorf("the restarted %s: ticket %d %s %v", dead.Name, status, body, err)
	}
}

// mixedLoad is the partners' side of the kill test.
type mixedLoad struct {
	t      *testing.T
	client *http.Client
	base   string
	tok    string
	// session is the FINISHED journey session the transfers are made under.
	session string
	seq     atomic.Int64
	count   atomic.Int64

	retries, transportErrs, gateway, otherRetry atomic.Int64
	balancerResent                              atomic.Int64 // WebView GETs HAProxy re-sent after an instance died

	mu       sync.Mutex
	done     []acked
	consents []string // acknowledged payment consents, for PCM reports
	problems []string
}

func (l *mixedLoad) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *mixedLoad) failed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.problems) > 0
}

func (l *mixedLoad) problemList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.problems[:min(len(l.problems), 10)]
}

func (l *mixedLoad) all() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.done...)
}

func (l *mixedLoad) ack(a acked) {
	l.mu.Lock()
	l.done = append(l.done, a)
	if a.kind == "consent" {
		l.consents = append(l.consents, a.id)
	}
	l.mu.Unlock()
	l.count.Add(1)
}

// nextConsent is an acknowledged payment consent not reported yet, if any.
func (l *mixedLoad) nextConsent() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.consents) == 0 {
		return ""
	}
	id := l.consents[0]
	l.consents = l.consents[1:]
	return id
}

// retry sends until the answer is final — a transport error, HAProxy's
// 5xx or a retryable status (a key still locked) say the request may not
// have taken effect: it returns the status and body of
// the final answer, and whether it took more than one try.
func (l *mixedLoad) retry(ctx context.Context, method, target string, body []byte, header map[string]string, retryable func(int) bool) (int, []byte, bool, error) {
	for i := range retryAttempts {
		status, resp, err := send(context.WithoutCancel(ctx), l.client, method, target, l.tok, body, header)
		switch {
		case err != nil:
			l.transportErrs.Add(1)
		case status >= 500:
			l.gateway.Add(1)
		case retryable != nil && retryable(status):
			l.otherRetry.Add(1)
		default:
			return status, resp, i > 0, nil
		}
		l.retries.Add(1)
		time.Sleep(retryPause)
	}
	return 0, nil, true, fmt.Errorf("%s %s: no final answer after %d tries", method, target, retryAttempts)
}

// one runs one operation of kind k (0 ticket + WebView, 1 journey session,
// 2 payment consent or, when one waits, a PCM report on it, 3 a one-cent
// sweeping transfer to Maria's savings, its externalId its key).
func (l *mixedLoad) one(ctx context.Context, k int) {
	n := l.seq.Add(1)
	switch k {
	case 0:
		key := uuid.NewString()
		body := fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"%s"}`, uuid.NewString(), uuid.NewString(), ticketDocument)
		a, ok := l.write(ctx, "ticket", key, l.base+"/openfinance/consent-flow/ticket", body, map[string]string{"idempotencyKey": key}, http.StatusCreated, "ticketId")
		if !ok {
			return
		}
		// The WebView redeems it (a webhook event); a retry after a lost answer finds it used.
		status, resp, again, err := l.retry(ctx, http.MethodGet, l.base+"/openfinance/consent-flow/webview?ticket="+url.QueryEscape(a.id), nil, nil, nil)
		if err != nil || !(status == http.StatusOK || status == http.StatusGone) {
			l.problem("WebView of ticket %s: %d %.200s %v", a.id, status, resp, err)
			return
		}
		if status == http.StatusGone && !again {
			// Only this client knows the ticket: its one GET was redeemed
			// by an instance that died before answering, and HAProxy sent
			// the GET again to a survivor (it retries a request whose
			// reused server connection broke).
			l.balancerResent.Add(1)
		}
		l.ack(a)
	case 1:
		ext := fmt.Sprintf("kill-%d-%s", n, uuid.NewString()[:8])
		body := fmt.Appendf(nil, `{"redirectUrl":"%s/sandbox/done","externalId":"%s"}`, l.base, ext)
		status, resp, again, err := l.retry(ctx, http.MethodPost, l.base+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions", body, nil, nil)
		if err != nil {
			l.problem("journey session %s: %v", ext, err)
			return
		}
		var out struct {
			ID string `json:"id"`
		}
		switch {
		case status == http.StatusOK && json.Unmarshal(resp, &out) == nil && out.ID != "":
		case status == http.StatusConflict && again:
			// The first try committed and its answer was lost: the externalId finds it.
			id, err := l.sessionByExternalID(ctx, ext)
			if err != nil {
				l.problem("journey session %s after 409: %v", ext, err)
				return
			}
			out.ID = id
		default:
			l.problem("journey session %s: %d %.300s", ext, status, resp)
			return
		}
		l.ack(acked{kind: "session", key: ext, id: out.ID, body: body, retried: again})
	case 2:
		if id := l.nextConsent(); id != "" {
			l.write(ctx, "pcm", id, l.base+"/api/journey/v1/consents/"+url.PathEscape(id)+"/report", []byte(pcmReportStep), nil, http.StatusCreated, "data.id")
			return
		}
		key := uuid.NewString()
		l.write(ctx, "consent", key, l.base+"/open-banking/payments/v4/consents", consentBody(),
			map[string]string{"x-idempotency-key": key, "x-fapi-interaction-id": uuid.NewString()}, http.StatusCreated, "data.consentId")
	case 3:
		ext := fmt.Sprintf("kt-%d-%s", n, uuid.NewString()[:8])
		l.write(ctx, "transfer", ext, l.base+transfersPath, transferBody(l.session, ext), nil, http.StatusOK, "id")
	}
}

const transfersPath = "/open-keys/itp/api/v2/sweeping-accounts/v2/payment-initiations"

// transferBody is a one-cent sweeping transfer from Maria's checking to her savings.
func transferBody(session, ext string) []byte {
	return fmt.Appendf(nil, `{"journeySessionId":"%s","externalId":"%s","amount":"0.01",
	"creditorAccount":{"ispb":"37241230","issuer":"0001","number":"23456789","accountType":"SVGS"},
	"riskSignals":{"manual":{"deviceId":"d-1","osVersion":"17","userTimeZoneOffset":"-03","language":"pt",
	  "screenDimensions":{"height":2532,"width":1170},"accountTenure":"2023-01-01"}}}`, session, ext)
}

// balanceCents is a sandbox account's available balance in cents, read from PostgreSQL.
func balanceCents(t *testing.T, db *sql.DB, number string) int64 {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), `SELECT b.available_amount FROM account_balances b JOIN accounts a ON a.id = b.account_id WHERE a.number = $1`, number).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return cents(t, v)
}

// write POSTs body until a final answer, which must be want with the id at
// path (a.b); it records the acknowledged write.
func (l *mixedLoad) write(ctx context.Context, kind, key, target string, body []byte, header map[string]string, want int, path string) (acked, bool) {
	// 409: the key is held by a request still running (or a dead one's
	// transaction not yet rolled back).
	status, resp, again, err := l.retry(ctx, http.MethodPost, target, body, header, func(s int) bool { return s == http.StatusConflict })
	id := jsonPath(resp, path)
	if err != nil || status != want || id == "" {
		l.problem("%s %s: %d %.300s %v", kind, key, status, resp, err)
		return acked{}, false
	}
	a := acked{kind: kind, key: key, id: id, body: body, retried: again}
	if kind != "ticket" { // a ticket counts once the WebView redeemed it
		l.ack(a)
	}
	return a, true
}

// replay sends an acknowledged write again and returns the id answered.
func (l *mixedLoad) replay(ctx context.Context, a acked) (string, error) {
	var (
		target, path string
		header       map[string]string
	)
	switch a.kind {
	case "ticket":
		target, path, header = l.base+"/openfinance/consent-flow/ticket", "ticketId", map[string]string{"idempotencyKey": a.key}
	case "consent":
		target, path, header = l.base+"/open-banking/payments/v4/consents", "data.consentId",
			map[string]string{"x-idempotency-key": a.key, "x-fapi-interaction-id": uuid.NewString()}
	case "pcm":
		target, path = l.base+"/api/journey/v1/consents/"+url.PathEscape(a.key)+"/report", "data.id"
	case "transfer": // the same externalId and body: the transfer already recorded
		target, path = l.base+transfersPath, "id"
	case "session": // no idempotency key: the externalId is refused (409) and finds the one session
		status, resp, err := send(ctx, l.client, http.MethodPost, l.base+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions", l.tok, a.body, nil)
		if err != nil || status != http.StatusConflict {
			return "", fmt.Errorf("replayed externalId: %d %.200s %v, want 409", status, resp, err)
		}
		return l.sessionByExternalID(ctx, a.key)
	}
	status, resp, err := send(ctx, l.client, http.MethodPost, target, l.tok, a.body, header)
	if err != nil {
		return "", err
	}
	if status >= 300 {
		return "", fmt.Errorf("status %d %.200s", status, resp)
	}
	return jsonPath(resp, path), nil
}

func (l *mixedLoad) sessionByExternalID(ctx context.Context, ext string) (string, error) {
	status, resp, _, err := l.retry(ctx, http.MethodGet, l.base+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions?externalId="+url.QueryEscape(ext), nil, nil, nil)
	if err != nil {
		return "", err
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if status != http.StatusOK || json.Unmarshal(resp, &list) != nil || len(list.Data) != 1 {
		return "", fmt.Errorf("list by externalId: %d %.300s", status, resp)
	}
	return list.Data[0].ID, nil
}

// consentBody is a Payments v4 consent request for today (plain JSON, the
// sandbox demo application's extension).
func consentBody() []byte {
	today := time.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
	return []byte(`{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
	  "payment":{"type":"PIX","date":"` + today + `","currency":"BRL","amount":"100.12",
	    "details":{"localInstrument":"DICT","proxy":"12345678909",
	      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`)
}

// jsonPath reads the string at a dotted path of a JSON object ("" if absent).
func jsonPath(body []byte, path string) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func ids(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
