package store

// Asynchronous signing jobs (CSC operationMode "A"), package jobs. A job is
// accepted in one transaction that also consumes the SAD budget for every
// item and the credential's counters; items then move pending -> done
// (with the result, in one UPDATE) or failed, each at most once, so a
// resumed or duplicated worker can never count or return an item twice.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Job states.
const (
	JobRunning = "running"
	// JobNotify: every item is finished, response_uri not yet told.
	JobNotify = "notify"
	JobDone   = "done"
)

// Job item states.
const (
	ItemPending = "pending"
	ItemDone    = "done"
	ItemFailed  = "failed"
)

// Job is an asynchronous signing job.
type Job struct {
	ID                       string
	UserID, ClientID, Domain string
	CredentialID             string
	Kind                     string // "hash" or "doc"
	Status                   string
	SADHash                  string
	SignOpts                 string
	Params                   []byte
	ResponseURI              string
	Total                    int
	CreatedAt, ExpiresAt     time.Time
	FinishedAt               time.Time
	NotifyTries              int
	LeaseOwner               string
	LeaseUntil               time.Time
	Done, Failed             int // filled by Job
}

// JobItem is one signature of a job.
type JobItem struct {
	JobID  string
	Index  int
	State  string
	Name   string
	Params []byte
	// Input is the digest (hash jobs) or the document (doc jobs).
	Input     []byte
	Result    []byte
	ErrorCode string
	ErrorMsg  string
}

// jobItemChunk bounds the rows of one INSERT (4 parameters each).
const jobItemChunk = 500

// AcceptJob stores a job and its items, consuming len(u.Authorized)
// signatures from the SAD and the credential's counters, all in one
// transaction: a job exists if and only if its whole budget was taken.
func (s *Store) AcceptJob(ctx context.Context, u SADUse, j Job, items []JobItem) error {
	if len(items) != len(u.Authorized) || len(items) != j.Total {
		return fmt.Errorf("accept job %s: %d items, %d authorized values, total %d", j.ID, len(items), len(u.Authorized), j.Total)
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := consumeSADTx(ctx, tx, u); err != nil {
			return err
		}
		if err := addUsageTx(ctx, tx, u.CredentialID, int64(len(items)), u.Now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sign_jobs (id, user_id, client_id, domain, credential_id, kind, status, sad_hash,
			sign_opts, params, response_uri, total, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			j.ID, j.UserID, j.ClientID, j.Domain, j.CredentialID, j.Kind, JobRunning, j.SADHash, j.SignOpts, j.Params,
			j.ResponseURI, j.Total, Millis(j.CreatedAt), Millis(j.ExpiresAt)); err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		for rest := items; len(rest) > 0; {
			n := min(len(rest), jobItemChunk)
			var b strings.Builder
			b.WriteString(`INSERT INTO sign_job_items (job_id, idx, state, name, params, input) VALUES `)
			args := make([]any, 0, n*6)
			for i, it := range rest[:n] {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString("(?,?,?,?,?,?)")
				args = append(args, j.ID, it.Index, ItemPending, it.Name, it.Params, it.Input)
			}
			if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
				return fmt.Errorf("insert job items: %w", err)
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("accept job %s: %w", j.ID, err)
	}
	return nil
}

const jobColumns = `id, user_id, client_id, domain, credential_id, kind, status, sad_hash, sign_opts, params, response_uri,
	total, created_at, expires_at, finished_at, notify_tries, lease_owner, lease_until`

func (s *Store) scanJob(r scanner) (*Job, error) {
	var j Job
	var created, expires, finished, lease int64
	if err := r.Scan(&j.ID, &j.UserID, &j.ClientID, &j.Domain, &j.CredentialID, &j.Kind, &j.Status, &j.SADHash, &j.SignOpts,
		&j.Params, &j.ResponseURI, &j.Total, &created, &expires, &finished, &j.NotifyTries, &j.LeaseOwner, &lease); err != nil {
		return nil, s.mapErr(err)
	}
	j.CreatedAt, j.ExpiresAt, j.FinishedAt, j.LeaseUntil = FromMillis(created), FromMillis(expires), FromMillis(finished), FromMillis(lease)
	return &j, nil
}

// Job returns a job with its done and failed item counts, or ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*Job, error) {
	j, err := s.scanJob(s.QueryRow(ctx, `SELECT `+jobColumns+` FROM sign_jobs WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	var done, failed sql.NullInt64
	if err := s.QueryRow(ctx, `SELECT SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END)
		FROM sign_job_items WHERE job_id = ?`, id).Scan(&done, &failed); err != nil {
		return nil, fmt.Errorf("job %s counts: %w", id, s.mapErr(err))
	}
	j.Done, j.Failed = int(done.Int64), int(failed.Int64)
	return j, nil
}

// ClaimJob gives owner the lease (until now+lease) on one job that needs
// work (running, or finished with response_uri not yet told) and whose
// lease expired, oldest first. ErrNotFound when there is none. One
// conditional UPDATE decides between replicas racing for the same job.
func (s *Store) ClaimJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (*Job, error) {
	for attempt := 0; attempt < 5; attempt++ {
		var id string
		err := s.QueryRow(ctx, `SELECT id FROM sign_jobs WHERE status IN ('running', 'notify') AND lease_until < ? AND expires_at > ?
			ORDER BY created_at, id LIMIT 1`, Millis(now), Millis(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("claim job: %w", ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("claim job: %w", s.mapErr(err))
		}
		res, err := s.Exec(ctx, `UPDATE sign_jobs SET lease_owner = ?, lease_until = ? WHERE id = ? AND lease_until < ?
			AND status IN ('running', 'notify')`, owner, Millis(now.Add(lease)), id, Millis(now))
		if err != nil {
			return nil, fmt.Errorf("claim job: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.Job(ctx, id)
		}
		// Another replica took it first: look for the next one.
	}
	return nil, fmt.Errorf("claim job: %w", ErrNotFound)
}

// RenewJobLease extends owner's lease; false means the lease was lost
// (another replica took the job over, or it finished).
func (s *Store) RenewJobLease(ctx context.Context, id, owner string, until time.Time) (bool, error) {
	res, err := s.Exec(ctx, `UPDATE sign_jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?`, Millis(until), id, owner)
	if err != nil {
		return false, fmt.Errorf("renew job lease %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseJob drops owner's lease so any replica may continue at once.
func (s *Store) ReleaseJob(ctx context.Context, id, owner string) error {
	if _, err := s.Exec(ctx, `UPDATE sign_jobs SET lease_until = 0 WHERE id = ? AND lease_owner = ?`, id, owner); err != nil {
		return fmt.Errorf("release job %s: %w", id, err)
	}
	return nil
}

const jobItemColumns = `job_id, idx, state, name, params, input, result, error_code, error_msg`

func (s *Store) jobItems(ctx context.Context, query string, args ...any) ([]JobItem, error) {
	rows, err := s.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []JobItem
	for rows.Next() {
		var it JobItem
		if err := rows.Scan(&it.JobID, &it.Index, &it.State, &it.Name, &it.Params, &it.Input, &it.Result, &it.ErrorCode, &it.ErrorMsg); err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, it)
	}
	return out, s.mapErr(rows.Err())
}

// PendingJobItems returns up to limit pending items, in index order.
func (s *Store) PendingJobItems(ctx context.Context, jobID string, limit int) ([]JobItem, error) {
	items, err := s.jobItems(ctx, `SELECT `+jobItemColumns+` FROM sign_job_items WHERE job_id = ? AND state = 'pending' ORDER BY idx LIMIT ?`, jobID, limit)
	if err != nil {
		return nil, fmt.Errorf("pending items of %s: %w", jobID, err)
	}
	return items, nil
}

// JobItems returns every item of a job with its result, in index order.
func (s *Store) JobItems(ctx context.Context, jobID string) ([]JobItem, error) {
	items, err := s.jobItems(ctx, `SELECT `+jobItemColumns+` FROM sign_job_items WHERE job_id = ? ORDER BY idx`, jobID)
	if err != nil {
		return nil, fmt.Errorf("items of %s: %w", jobID, err)
	}
	return items, nil
}

// PendingJobIndexes returns which of the given item indexes are still
// pending (sam checks it before signing for a job).
func (s *Store) PendingJobIndexes(ctx context.Context, jobID string, idx []int) (map[int]bool, error) {
	out := map[int]bool{}
	for len(idx) > 0 {
		n := min(len(idx), jobItemChunk)
		args := []any{jobID}
		for _, i := range idx[:n] {
			args = append(args, i)
		}
		rows, err := s.Query(ctx, `SELECT idx FROM sign_job_items WHERE job_id = ? AND state = 'pending' AND idx IN (?`+
			strings.Repeat(",?", n-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("pending indexes of %s: %w", jobID, err)
		}
		for rows.Next() {
			var i int
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pending indexes of %s: %w", jobID, s.mapErr(err))
			}
			out[i] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("pending indexes of %s: %w", jobID, s.mapErr(err))
		}
		idx = idx[n:]
	}
	return out, nil
}

// JobItemResult finishes one item: Result set means done, otherwise
// failed with ErrorCode / ErrorMsg. Record, when set, goes to the
// signature log in the same transaction, only if this call finished the
// item (so a duplicate worker logs nothing).
type JobItemResult struct {
	Index               int
	Result              []byte
	ErrorCode, ErrorMsg string
	Record              *SignatureRecord
}

// CompleteJobItems stores results in one transaction; an item that is no
// longer pending is left alone. A finished item's input (a whole PDF for
// signDoc jobs) is dropped: only pending items are ever signed again, and
// the job's final answer is read without it. It returns how many items it
// finished.
func (s *Store) CompleteJobItems(ctx context.Context, jobID string, results []JobItemResult) (int, error) {
	finished := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		finished = 0
		var recs []SignatureRecord
		for _, r := range results {
			var res sql.Result
			var err error
			if r.Result != nil {
				res, err = tx.Exec(ctx, `UPDATE sign_job_items SET state = 'done', result = ?, input = ? WHERE job_id = ? AND idx = ? AND state = 'pending'`,
					r.Result, []byte{}, jobID, r.Index)
			} else {
				res, err = tx.Exec(ctx, `UPDATE sign_job_items SET state = 'failed', error_code = ?, error_msg = ?, input = ?
					WHERE job_id = ? AND idx = ? AND state = 'pending'`, r.ErrorCode, r.ErrorMsg, []byte{}, jobID, r.Index)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				finished++
				if r.Record != nil {
					recs = append(recs, *r.Record)
				}
			}
		}
		return addSignatureRecords(ctx, tx, mergeHashRecords(recs))
	})
	if err != nil {
		return 0, fmt.Errorf("complete items of %s: %w", jobID, err)
	}
	return finished, nil
}

// mergeHashRecords folds the rows of signed hashes (format "hash", the
// document being the hex digest) into one batch row, as a synchronous
// signHash logs them; document rows stay one per document.
func mergeHashRecords(recs []SignatureRecord) []SignatureRecord {
	var out []SignatureRecord
	var batch *SignatureRecord
	for _, r := range recs {
		d, err := hex.DecodeString(r.Document)
		if r.Format != "hash" || r.Count != 1 || r.Outcome != "success" || err != nil || len(d) == 0 {
			out = append(out, r)
			continue
		}
		if batch == nil {
			batch = &SignatureRecord{ID: r.ID, At: r.At, CredentialID: r.CredentialID, UserID: r.UserID, Client: r.Client,
				Format: "hash", HashAlgo: r.HashAlgo, Outcome: "success", JobID: r.JobID}
		}
		batch.Count++
		batch.Digests = append(batch.Digests, d)
	}
	if batch != nil {
		if batch.Count == 1 {
			batch.Document, batch.Digests = hex.EncodeToString(batch.Digests[0]), nil
		}
		out = append(out, *batch)
	}
	return out
}

// FinishJob closes a job whose items are all finished: status becomes
// notify (a response_uri is to be told) or done, and the budget of failed
// items goes back to the SAD and to the credential's counters, in one
// transaction that only the first caller gets to run. It reports whether
// this call finished the job and how many items failed.
func (s *Store) FinishJob(ctx context.Context, id string, now time.Time) (finished bool, failed int, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		finished, failed = false, 0
		var pending int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sign_job_items WHERE job_id = ? AND state = 'pending'`, id).Scan(&pending); err != nil {
			return s.mapErr(err)
		}
		if pending > 0 {
			return nil
		}
		var sadHash, credentialID string
		var created int64
		err := tx.QueryRow(ctx, `UPDATE sign_jobs SET status = CASE WHEN response_uri = '' THEN 'done' ELSE 'notify' END, finished_at = ?
			WHERE id = ? AND status = 'running' RETURNING sad_hash, credential_id, created_at`, Millis(now), id).Scan(&sadHash, &credentialID, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return s.mapErr(err)
		}
		finished = true
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sign_job_items WHERE job_id = ? AND state = 'failed'`, id).Scan(&failed); err != nil {
			return s.mapErr(err)
		}
		if failed == 0 {
			return nil
		}
		// Refund: the budget of items that produced no signature.
		if _, err := tx.Exec(ctx, `UPDATE sads SET remaining = remaining + ? WHERE hash = ?`, failed, sadHash); err != nil {
			return err
		}
		return refundUsageTx(ctx, tx, credentialID, int64(failed), FromMillis(created))
	})
	if err != nil {
		return false, 0, fmt.Errorf("finish job %s: %w", id, err)
	}
	return finished, failed, nil
}

// JobNotified records a delivery attempt to response_uri; delivered (or
// given up) moves the job to done.
func (s *Store) JobNotified(ctx context.Context, id string, final bool) error {
	q := `UPDATE sign_jobs SET notify_tries = notify_tries + 1 WHERE id = ? AND status = 'notify'`
	if final {
		q = `UPDATE sign_jobs SET notify_tries = notify_tries + 1, status = 'done' WHERE id = ? AND status = 'notify'`
	}
	if _, err := s.Exec(ctx, q, id); err != nil {
		return fmt.Errorf("job %s notified: %w", id, err)
	}
	return nil
}

// PurgeJobs deletes jobs (and their items, i.e. documents and results)
// whose validity period ended. A job still running then gives the budget
// of its unsigned items (pending or failed) back to the SAD and the
// credential's counters first, as FinishJob would have; one that a
// replica is working on (live lease) waits for the next purge. It returns
// how many jobs went.
func (s *Store) PurgeJobs(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		expired := `SELECT id FROM sign_jobs WHERE expires_at <= ? AND NOT (status = 'running' AND lease_until > ?)`
		rows, err := tx.Query(ctx, `SELECT j.sad_hash, j.credential_id, j.created_at,
				(SELECT COUNT(*) FROM sign_job_items i WHERE i.job_id = j.id AND i.state <> 'done')
			FROM sign_jobs j WHERE j.status = 'running' AND j.id IN (`+expired+`)`, Millis(now), Millis(now))
		if err != nil {
			return err
		}
		type refund struct {
			sadHash, credentialID string
			created               int64
			n                     int
		}
		var refunds []refund
		for rows.Next() {
			var r refund
			if err := rows.Scan(&r.sadHash, &r.credentialID, &r.created, &r.n); err != nil {
				rows.Close()
				return s.mapErr(err)
			}
			if r.n > 0 {
				refunds = append(refunds, r)
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range refunds {
			if _, err := tx.Exec(ctx, `UPDATE sads SET remaining = remaining + ? WHERE hash = ?`, r.n, r.sadHash); err != nil {
				return err
			}
			if err := refundUsageTx(ctx, tx, r.credentialID, int64(r.n), FromMillis(r.created)); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sign_job_items WHERE job_id IN (`+expired+`)`, Millis(now), Millis(now)); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM sign_jobs WHERE id IN (`+expired+`)`, Millis(now), Millis(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge jobs: %w", err)
	}
	return int(n), nil
}
