// Package store opens Ponte's database — embedded SQLite or PostgreSQL — runs the
// embedded migrations and provides the one way to write: a transaction function.
//
// Both engines accept the same SQL: numbered placeholders ($1), TEXT, BIGINT
// (timestamps are Unix milliseconds) and INTEGER flags, so domain packages carry
// a single set of queries.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // registers the "sqlite" database/sql driver; its Error carries result codes
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Engine names a database engine.
type Engine string

// The supported engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("store: database is closed")

// DB is an open Ponte database.
type DB struct {
	engine Engine
	where  string // file path or host/database, for log lines; never credentials
	read   *sql.DB
	write  *sql.DB
	pool   *pgxpool.Pool // PostgreSQL only: the native pool of the hot paths (Pool)
	batch  *committer    // SQLite only
	stmts  sync.Map      // prepared statements: stmtKey → *sql.Stmt

	pendingMu sync.Mutex
	pending   map[string]bool // write statements to prepare after the current batch

	// SQLite checkpoints run here, off the commit path (see checkpointLoop).
	checkpointDB   *sql.DB
	stopCheckpoint chan struct{}
	checkpointDone chan struct{}

	// Statements prepared in the background (PostgreSQL, see TxStmt) live
	// no longer than the DB: Close cancels bgCtx and waits for bg.
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bgMu      sync.Mutex
	bgClosed  bool
	bg        sync.WaitGroup
	preparing sync.Map // queries being prepared in the background
}

type stmtKey struct {
	write bool
	query string
}

// Options says which database to open.
type Options struct {
	// URL is a postgres:// or postgresql:// URL, or sqlite:PATH / file:PATH.
	// Empty means SQLite at DataDir/ponte.db.
	URL     string
	DataDir string
	Logger  *slog.Logger
}

// Open opens (creating if needed) and migrates the database.
func Open(ctx context.Context, opts Options) (*DB, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(opts.URL, "postgres://"), strings.HasPrefix(opts.URL, "postgresql://"):
		db, err = openPostgres(ctx, opts.URL)
	case opts.URL == "":
		dir := opts.DataDir
		if dir == "" {
			dir = "data"
		}
		db, err = openSQLite(ctx, filepath.Join(dir, "ponte.db"), logger)
	case strings.HasPrefix(opts.URL, "sqlite:"), strings.HasPrefix(opts.URL, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(opts.URL, "sqlite:"), "file:")
		db, err = openSQLite(ctx, path, logger)
	default:
		return nil, fmt.Errorf("store: unsupported database URL scheme (want postgres://, postgresql://, sqlite: or file:)")
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: empty SQLite path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	// synchronous(FULL): a commit is on disk before it is acknowledged.
	// _txlock=immediate: writers take the lock at BEGIN, so a transaction never
	// fails half-way with SQLITE_BUSY on upgrade.
	common := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	// wal_autocheckpoint(0): the writer never checkpoints inside a commit
	// (that stalled whole batches); checkpointLoop does it in the background.
	// temp_store(2): savepoints' statement journals stay in memory instead
	// of a temp file (durability is the WAL's, untouched).
	// cache_size: a group commit can dirty thousands of pages (a PCM settle
	// updates 1,000 outbox rows in one unit); with SQLite's default 2 MiB
	// cache the writer spilled them to the WAL mid-transaction and read them
	// back (PCM forwarding: 13,000 -> 22,000 items/s). Pages are allocated
	// as used, so this is a ceiling, not a reservation.
	write, err := sql.Open("sqlite", "file:"+path+"?"+common+"&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(2)"+
		fmt.Sprintf("&_pragma=cache_size(-%d)", writerCacheKiB))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// One writer: SQLite serialises writers anyway, and a single connection
	// lets the committer batch many transactions into one fsync.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", "file:"+path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: open sqlite reader: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	checkpoint, err := sql.Open("sqlite", "file:"+path+"?"+common)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("store: open sqlite checkpointer: %w", err)
	}
	checkpoint.SetMaxOpenConns(1)
	db := &DB{engine: SQLite, where: path, read: read, write: write, checkpointDB: checkpoint,
		stopCheckpoint: make(chan struct{}), checkpointDone: make(chan struct{})}
	db.batch = newCommitter(write, logger, db.preparePending)
	go db.checkpointLoop(logger)
	return db, nil
}

// createPrivate creates the database file, empty and mode 0600, if it does
// not exist yet: SQLite would create it 0644 (less the umask), and it holds
// end users' personal data in clear. SQLite's unix VFS gives the -wal and
// -shm files the main file's mode, so they follow. An existing file keeps
// the mode its operator gave it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	return nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	where := "postgres"
	if u, perr := url.Parse(rawURL); perr == nil {
		where = "postgres://" + u.Host + u.Path // no userinfo: passwords stay out of logs
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	cfg.ConnConfig.Tracer = roundTripTracer{}
	cfg.MaxConns = nativePoolConns
	// Two pools on one configuration: database/sql for the transaction
	// functions (Write, Read), whose prepared statements live on its own
	// idle connections, and pgx's native pool for the hot paths that need
	// one round trip per request (a pipelined batch or one statement),
	// which database/sql cannot express.
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(16)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", where, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", where, err)
	}
	db := &DB{engine: Postgres, where: where, read: sqlDB, write: sqlDB, pool: pool}
	db.bgCtx, db.bgCancel = context.WithCancel(context.Background())
	return db, nil
}

// nativePoolConns bounds the native pgx pool (Pool); with database/sql's 32
// an instance opens at most 48 connections (docs/deployment.md).
const nativePoolConns = 16

// Pool returns the native pgx pool on PostgreSQL, nil on SQLite. The hot
// write paths use it to send their work as one pipelined batch or one
// statement: one round trip, where a database/sql transaction takes a
// BEGIN, each statement and a COMMIT.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

func (db *DB) migrate(ctx context.Context) error {
	dialect := database.DialectSQLite3
	var opts []goose.ProviderOption
	if db.engine == Postgres {
		dialect = database.DialectPostgres
		// Several instances may start at once on one database: one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.write, mustSub(migrations, "migrations"), opts...)
	if err != nil {
		return fmt.Errorf("store: load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate %s: %w", db.where, err)
	}
	return nil
}

// Engine reports which engine is open.
func (db *DB) Engine() Engine { return db.engine }

// Where names the database for humans (path or host/database, no credentials).
func (db *DB) Where() string { return db.where }

// Read returns the pool for queries. Never use it inside a Write function.
func (db *DB) Read() *sql.DB { return db.read }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return err
	}
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Write runs fn in a transaction and commits it. fn must use only tx; its
// effects are durable when Write returns nil. When fn returns an error nothing
// it did is kept. fn runs exactly once.
//
// On SQLite, concurrent Write calls are grouped into one transaction (each in
// its own savepoint) so that one fsync acknowledges many requests.
func (db *DB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.batch != nil {
		return db.batch.do(ctx, fn)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := callSafely(fn, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// SweepChunk is how many rows one step of a sweep changes (see Sweep).
const SweepChunk = 1000

// Sweep runs step in write transactions of its own, each changing at most
// limit rows, until a step changes fewer, and returns the total. A backlog of
// tens of thousands of expired rows swept in one transaction held SQLite's
// single writer (and PostgreSQL's row locks) for a tenth of a second or more,
// stalling every request's commit behind it; in steps, those commits go in
// between. Each step is atomic; a sweep interrupted half-way leaves the rest
// for the next one.
func (db *DB) Sweep(ctx context.Context, limit int, step func(tx *sql.Tx, limit int) (int64, error)) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.Write(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = step(tx, limit)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(limit) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// writerCacheKiB is the SQLite write connection's page cache (cache_size
// in KiB); see openSQLite.
const writerCacheKiB = 32 << 10

// checkpointInterval is how often SQLite's WAL is copied back into the
// database file. PASSIVE checkpoints never block the writer or readers.
const checkpointInterval = 250 * time.Millisecond

func (db *DB) checkpointLoop(logger *slog.Logger) {
	defer close(db.checkpointDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stopCheckpoint:
			// A last full checkpoint, so a clean shutdown leaves a small WAL.
			if _, err := db.checkpointDB.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				logger.Warn("sqlite final checkpoint", "err", err)
			}
			return
		case <-t.C:
			if _, err := db.checkpointDB.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				logger.Warn("sqlite checkpoint", "err", err)
			}
		}
	}
}

// ReadStmt returns query prepared on the read pool, once per DB: parsing SQL
// again on every request was a tenth of Ponte's CPU on SQLite.
func (db *DB) ReadStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	return db.stmt(ctx, false, query)
}

// TxStmt returns query prepared once on the write pool, bound to tx. Use it
// only inside a Write function.
func (db *DB) TxStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(stmtKey{true, query}); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	if db.batch == nil {
		// PostgreSQL: preparing on the pool needs a free connection, and
		// every connection may be held by a transaction waiting right here
		// (a burst of first uses): prepare on tx now, and on the pool in
		// the background, where waiting holds no connection.
		db.prepareInBackground(query)
		return tx.PrepareContext(ctx, query)
	}
	st, err := db.stmt(ctx, true, query)
	if errors.Is(err, errPrepareInBatch) {
		// SQLite's one write connection is inside this very transaction, so
		// the pool cannot prepare now: prepare on tx for this use, and let
		// the committer prepare it for good once the batch is done.
		db.prepareLater(query)
		return tx.PrepareContext(ctx, query)
	}
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// prepareInBackground prepares query on the pool in a goroutine of the DB's
// own, one per query at a time; Close cancels it and waits for it.
func (db *DB) prepareInBackground(query string) {
	if _, busy := db.preparing.LoadOrStore(query, true); busy {
		return
	}
	db.bgMu.Lock()
	if db.bgClosed {
		db.bgMu.Unlock()
		db.preparing.Delete(query)
		return
	}
	db.bg.Add(1)
	db.bgMu.Unlock()
	go func() {
		defer db.bg.Done()
		defer db.preparing.Delete(query)
		ctx, cancel := context.WithTimeout(db.bgCtx, 30*time.Second)
		defer cancel()
		_, _ = db.stmt(ctx, true, query)
	}()
}

func (db *DB) prepareLater(query string) {
	db.pendingMu.Lock()
	if db.pending == nil {
		db.pending = map[string]bool{}
	}
	db.pending[query] = true
	db.pendingMu.Unlock()
}

// preparePending runs in the committer between batches, when the write
// connection is free.
func (db *DB) preparePending() {
	db.pendingMu.Lock()
	queries := db.pending
	db.pending = nil
	db.pendingMu.Unlock()
	for q := range queries {
		key := stmtKey{true, q}
		if _, ok := db.stmts.Load(key); ok {
			continue
		}
		if st, err := db.write.Prepare(q); err == nil {
			db.stmts.Store(key, st)
		}
	}
}

func (db *DB) stmt(ctx context.Context, write bool, query string) (*sql.Stmt, error) {
	key := stmtKey{write, query}
	if st, ok := db.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	pool := db.read
	if write {
		pool = db.write
	}
	if write && db.batch != nil {
		return nil, errPrepareInBatch
	}
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	if prev, loaded := db.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

var errPrepareInBatch = errors.New("store: statement not prepared")

// Close waits for pending writes, cancels and waits for background
// statement preparation, then closes the pools.
func (db *DB) Close() error {
	db.bgMu.Lock()
	db.bgClosed = true
	db.bgMu.Unlock()
	if db.bgCancel != nil {
		db.bgCancel()
	}
	db.bg.Wait()
	if db.batch != nil {
		db.batch.close()
	}
	if db.stopCheckpoint != nil {
		select {
		case <-db.checkpointDone:
		default:
			close(db.stopCheckpoint)
			<-db.checkpointDone
		}
	}
	db.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	if db.checkpointDB != nil {
		err = errors.Join(err, db.checkpointDB.Close())
	}
	if db.pool != nil {
		db.pool.Close()
	}
	return err
}

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation; a primary
// key is a unique index there, so it covers both.
const pgUniqueViolation = "23505"

// IsUniqueViolation reports whether err, or an error it wraps, is a unique or
// primary-key violation on either engine. It asks the driver's error code,
// never the message, which other errors (a trigger's, a value echoed back)
// may imitate.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		// The driver turns on extended result codes, which tell a unique
		// index from a primary key, NOT NULL, CHECK or foreign key.
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}
