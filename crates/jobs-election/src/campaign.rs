//! The campaign shared by the MySQL and PostgreSQL elections: open a dedicated lock session, wait for the lock,
//! record a new epoch, then lead while a check every heartbeat says the session still holds it.
//!
//! Rules that hold on every path:
//! - the lock lives on one dedicated connection, never a pooled one, and is never asked for again on a session
//!   that may hold it (MySQL and PostgreSQL both stack a second hold);
//! - every query on that connection runs under a timeout, and any error, timeout or "not held" answer makes the
//!   leader step down at once: clear the lease, publish `Follower`, drop the connection (the server then frees
//!   whatever the session held), pause briefly and campaign again on a fresh connection;
//! - the lease is renewed before `Leader` is published and cleared before `Follower` is, so the dispatcher never
//!   sees a valid lease without the lock.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use jobs_model::Timestamp;
use jobs_storage::{Store, redact_url};

use crate::timing::{STORE_TIMEOUT, Timing};
use crate::{ElectionConfig, Error, Lease, Result, Role};

/// One dedicated connection that can hold the leader lock.
pub(crate) trait LockSession: Sized + Send {
    /// Connection settings, parsed once from the database URL.
    type Options: Send + Sync;
    /// The backend's name in logs.
    const BACKEND: &'static str;

    fn parse(url: &str) -> Result<Self::Options>;

    /// Opens a connection outside any pool and prepares its session (timeouts, keepalives).
    fn open(options: &Self::Options, spec: Spec<'_>) -> impl Future<Output = Result<Self>> + Send;

    /// One attempt to take the lock, blocking up to `Timing::acquire_wait`: `true` means this session now holds it.
    /// Never called on a session that holds the lock.
    fn acquire(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Whether this session still holds the lock.
    fn holds(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Releases the lock; `true` if this session held it.
    fn release(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Closes the connection politely (under a timeout).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// What a lock session needs to know besides its connection settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec<'a> {
    pub(crate) key: &'a str,
    /// The redacted database URL, for error messages.
    pub(crate) address: &'a str,
    pub(crate) timing: Timing,
}

/// Runs `query` under `limit`, naming it `what` in errors.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &'static str,
    query: impl Future<Output = Result<T, sea_orm::sqlx::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, query).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(Error::Query { what, source }),
        Err(_) => Err(Error::Timeout { what, after: limit }),
    }
}

/// Everything an election over a lock session needs.
pub(crate) struct Campaign {
    url: String,
    address: String,
    store: Store,
    config: ElectionConfig,
    lease: Lease,
    timing: Timing,
}

impl fmt::Debug for Campaign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the full URL: it may carry a password.
        f.debug_struct("Campaign")
            .field("address", &self.address)
            .field("lock_key", &self.config.lock_key)
            .field("instance_id", &self.config.instance_id)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

enum Campaigned {
    Won,
    Stopped,
    Failed(Error),
}

enum Led {
    Stopped,
    Lost,
}

impl Campaign {
    pub(crate) fn new(url: String, store: Store, config: ElectionConfig, lease: Lease) -> Self {
        let address = redact_url(&url);
        let timing = Timing::new(&config);
        Self { url, address, store, config, lease, timing }
    }

    pub(crate) fn lock_key(&self) -> &str {
        &self.config.lock_key
    }

    /// Campaigns and leads until shutdown; leaves the instance a follower without a lease.
    pub(crate) async fn run<S: LockSession>(
        &self,
        role: watch::Sender<Role>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let span = tracing::info_span!(
            "election",
            backend = S::BACKEND,
            lock_key = %self.config.lock_key,
            instance_id = %self.config.instance_id,
        );
        let result = self.campaign::<S>(&role, &mut shutdown).instrument(span).await;
        self.lease.clear();
        role.send_if_modified(|role| std::mem::replace(role, Role::Follower).is_leader());
        result
    }

    async fn campaign<S: LockSession>(
        &self,
        role: &watch::Sender<Role>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        if self.config.lock_key.is_empty() {
            return Err(Error::Config("`scheduler.lock_key` must not be empty".to_owned()));
        }
        let options = S::parse(&self.url)?;
        let spec = Spec { key: &self.config.lock_key, address: &self.address, timing: self.timing };
        tracing::info!(timing = ?self.timing, "campaigning for leadership");
        let mut trouble = Trouble::default();
        loop {
            if is_stopping(shutdown) {
                return Ok(());
            }
            let opened = tokio::select! {
                opened = S::open(&options, spec) => opened,
                () = stopped(shutdown) => return Ok(()),
            };
            let mut session = match opened {
                Ok(session) => session,
                Err(err) => {
                    trouble.report(&err);
                    if self.pause(shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            match self.wait_for_lock(&mut session, &mut trouble, shutdown).await {
                Campaigned::Won => {}
                // Dropping the connection ends an attempt in flight; the server frees anything it took.
                Campaigned::Stopped => return Ok(()),
                Campaigned::Failed(err) => {
                    trouble.report(&err);
                    drop(session);
                    if self.pause(shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            }
            // Before planning: a deposed leader (frozen, cut off) may still hold row locks in open transactions.
            self.end_deposed_sessions().await;
            let epoch = match self.bump_epoch().await {
                Ok(epoch) => epoch,
                Err(err) => {
                    tracing::warn!(error = %err, "took the lock but cannot record a new epoch; releasing it");
                    self.release(&mut session).await;
                    session.close().await;
                    if self.pause(shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            match self.lead(&mut session, epoch, role, shutdown).await {
                Led::Stopped => {
                    // A clean handover: the next leader must not end this instance's sessions, which still finish
                    // requests while it drains. Then the lock is released at once, so that a follower blocked on it
                    // takes over without waiting.
                    self.forget_session_tag().await;
                    self.release(&mut session).await;
                    session.close().await;
                    return Ok(());
                }
                Led::Lost => {
                    // Not closed politely: the connection may be broken or mid-query; dropping it ends the session.
                    drop(session);
                    if self.pause(shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Asks for the lock, one blocking attempt after another, until this session holds it.
    async fn wait_for_lock<S: LockSession>(
        &self,
        session: &mut S,
        trouble: &mut Trouble,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Campaigned {
        loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                attempt = session.acquire() => attempt,
                () = stopped(shutdown) => return Campaigned::Stopped,
            };
            match attempt {
                Ok(true) => {
                    trouble.recovered();
                    return Campaigned::Won;
                }
                Ok(false) => {
                    trouble.recovered();
                    // A busy lock answers after the whole wait; an early "no" must not become a busy loop.
                    if started.elapsed() < self.timing.acquire_wait / 2 && self.pause(shutdown).await {
                        return Campaigned::Stopped;
                    }
                }
                Err(err) => return Campaigned::Failed(err),
            }
        }
    }

    /// Ends the database sessions of the previous leader, found by the tag it recorded, so that its open
    /// transactions roll back and release their locks; a failure here is logged and does not stop the takeover.
    async fn end_deposed_sessions(&self) {
        let end = async {
            let Some(previous) = self.store.leader(&self.config.lock_key).await? else {
                return Ok((None, 0));
            };
            let Some(tag) = previous.session_tag else {
                return Ok((None, 0));
            };
            let ended = self.store.end_sessions(&tag).await?;
            Ok::<_, jobs_storage::Error>((Some(previous.instance_id), ended))
        };
        match tokio::time::timeout(STORE_TIMEOUT, end).await {
            Ok(Ok((Some(previous), ended))) if ended > 0 => {
                tracing::info!(previous_leader = %previous, ended, "ended the deposed leader's database sessions");
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot end the deposed leader's database sessions"),
            Err(_) => tracing::warn!(after = ?STORE_TIMEOUT, "timed out ending the deposed leader's database sessions"),
        }
    }

    /// Clears this instance's session tag from the leader record, on a clean step-down (best effort).
    async fn forget_session_tag(&self) {
        let Some(tag) = self.store.session_tag() else { return };
        let forget = self.store.forget_session_tag(&self.config.lock_key, tag.as_str());
        match tokio::time::timeout(STORE_TIMEOUT, forget).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot clear this leader's session tag"),
            Err(_) => tracing::warn!(after = ?STORE_TIMEOUT, "timed out clearing this leader's session tag"),
        }
    }

    /// Records that this instance now leads: the planning writes of the previous leader's epoch fail from now on.
    async fn bump_epoch(&self) -> Result<i64> {
        let bump = self.store.bump_epoch(&self.config.lock_key, &self.config.instance_id, Timestamp::now());
        match tokio::time::timeout(STORE_TIMEOUT, bump).await {
            Ok(epoch) => Ok(epoch?),
            Err(_) => Err(Error::Timeout { what: "recording the new leader epoch", after: STORE_TIMEOUT }),
        }
    }

    /// Leads while the checks are good: each renews the lease; the first one publishes the role.
    /// A check that does not answer before the lease runs out deposes this instance then, not when the check gives
    /// up: a leader that cannot prove its lease stops within one heartbeat.
    async fn lead<S: LockSession>(
        &self,
        session: &mut S,
        epoch: i64,
        role: &watch::Sender<Role>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Led {
        let mut leading = false;
        let mut lease_ends: Option<Instant> = None;
        loop {
            let checked_at = Instant::now();
            let check = session.holds();
            let answer = match lease_ends {
                Some(end) => tokio::time::timeout_at(end, check).await.ok(),
                None => Some(check.await),
            };
            let lost = match answer {
                Some(Ok(true)) => None,
                Some(Ok(false)) => Some("the lock session no longer holds the lock".to_owned()),
                Some(Err(err)) => Some(err.to_string()),
                None => Some("the lock check did not answer before the lease ran out".to_owned()),
            };
            if let Some(reason) = lost {
                self.step_down(role, epoch, leading, &reason);
                return Led::Lost;
            }
            if !leading && is_stopping(shutdown) {
                return Led::Stopped;
            }
            self.lease.renew(checked_at, self.timing.lease);
            lease_ends = Some(checked_at + self.timing.lease);
            if !leading {
                role.send_replace(Role::Leader { epoch });
                tracing::info!(epoch, "gained leadership");
                leading = true;
            }
            // Paced from the check's start, so that a slow answer does not eat into the next check's share of the
            // lease (the lease ends a heartbeat plus 1 s after the check was sent).
            tokio::select! {
                () = tokio::time::sleep_until(checked_at + self.timing.heartbeat) => {}
                () = stopped(shutdown) => {
                    self.lease.clear();
                    role.send_replace(Role::Follower);
                    tracing::info!(epoch, "stepped down for shutdown; releasing the lock");
                    return Led::Stopped;
                }
            }
        }
    }

    /// Stops dispatching at once: the lease first, then the role.
    fn step_down(&self, role: &watch::Sender<Role>, epoch: i64, leading: bool, reason: &str) {
        self.lease.clear();
        role.send_replace(Role::Follower);
        if leading {
            tracing::info!(epoch, reason, "lost leadership");
        } else {
            tracing::warn!(epoch, reason, "took the lock but lost it before leading");
        }
    }

    async fn release<S: LockSession>(&self, session: &mut S) {
        match session.release().await {
            Ok(true) => tracing::info!("released the lock"),
            Ok(false) => tracing::warn!("the lock was not held when releasing it"),
            Err(err) => tracing::warn!(error = %err, "cannot release the lock; closing its connection frees it"),
        }
    }

    /// Waits a little before campaigning again; `true` if shutdown came meanwhile.
    async fn pause(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(self.timing.retry_pause) => false,
            () = stopped(shutdown) => true,
        }
    }
}

/// Logs a failing lock connection once, then quietly until it recovers.
#[derive(Debug, Default)]
struct Trouble {
    reported: bool,
}

impl Trouble {
    fn report(&mut self, err: &Error) {
        if self.reported {
            tracing::debug!(error = %err, "lock connection still failing");
        } else {
            tracing::warn!(error = %err, "lock connection failed; retrying");
        }
        self.reported = true;
    }

    fn recovered(&mut self) {
        if std::mem::take(&mut self.reported) {
            tracing::info!("lock connection recovered");
        }
    }
}

/// Whether shutdown was asked for, or its sender is gone.
pub(crate) fn is_stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves once shutdown is asked for, or its sender is gone.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
