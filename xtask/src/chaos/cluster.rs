//! The workload of a scenario: scheduler processes, a recording executor, every-second tasks and manual triggers;
//! and the accounting of what the executor received against what the window should have fired.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use jobs_executor::ExecutorHandle;
use jobs_model::Timestamp;
use jobs_storage::testing::servers::spare_port;

use crate::chaos::verdict::Outcome;
use crate::chaos::{Context, proxy};
use crate::procs::{
    Receipt, Receipts, Recording, Scheduler, client, client_with_timeout, get, post, recording_executor_on, snapshot,
    wait_for,
};

/// How long a slow task's handler takes, so that transactions and requests are in flight.
const SLOW_HANDLER: Duration = Duration::from_millis(300);

/// How often a manual trigger is sent.
const TRIGGER_EVERY: Duration = Duration::from_millis(200);

/// What a scenario runs.
#[derive(Debug, Default)]
pub(crate) struct Setup {
    pub(crate) schedulers: usize,
    pub(crate) tasks: usize,
    /// How many of the tasks have a handler that takes [`SLOW_HANDLER`].
    pub(crate) slow_tasks: usize,
    /// Environment of every scheduler beyond the harness's own.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Holds every `/execute` this long on its way to the executor.
    pub(crate) send_delay: Option<Duration>,
}

/// The scheduler processes and the executor of one scenario; the processes are killed when it is dropped.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Scheduler>,
    pub(crate) http: reqwest::Client,
    /// For polls that must not wait on a frozen process.
    pub(crate) quick: reqwest::Client,
    pub(crate) receipts: Receipts,
    /// The every-second tasks, by name.
    pub(crate) tasks: Vec<String>,
    /// The id of the task that manual triggers fire (it has no cron fire in the run).
    manual_task: Option<String>,
    executor: Option<ExecutorHandle>,
    proxy: Option<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// Starts `setup.schedulers` scheduler processes on `database_url`, logging to `<logs>/<scenario>-<n>.log`.
    pub(crate) fn launch(ctx: &Context, scenario: &str, database_url: &str, setup: &Setup) -> anyhow::Result<Self> {
        let mut env: Vec<(&str, &str)> = vec![
            ("JOBS_SCHEDULER__HEARTBEAT_INTERVAL", "1s"),
            ("JOBS_EXECUTORS__HEARTBEAT_INTERVAL", "1s"),
            ("JOBS_LOG__FORMAT", "json"),
        ];
        env.extend(setup.env.iter().map(|(key, value)| (*key, value.as_str())));
        let mut nodes = Vec::new();
        for n in 1..=setup.schedulers {
            let instance = format!("{scenario}-{n}");
            let log = ctx.dir.join("logs").join(format!("{instance}.log"));
            let _ = std::fs::remove_file(&log);
            let mut node =
                Scheduler::new(database_url, spare_port()?, &instance, &env).with_paths(ctx.binary.clone(), log);
            node.start()?;
            nodes.push(node);
        }
        Ok(Self {
            nodes,
            http: client(),
            quick: client_with_timeout(Duration::from_millis(1500)),
            receipts: Receipts::default(),
            tasks: Vec::new(),
            manual_task: None,
            executor: None,
            proxy: None,
        })
    }

    /// Waits for a leader, starts the executor, creates the tasks and waits until every task has fired.
    pub(crate) async fn prepare(&mut self, scenario: &str, setup: &Setup) -> anyhow::Result<()> {
        let leader = wait_for("a leader", Duration::from_secs(60), || self.leader()).await?;
        self.tasks = (1..=setup.tasks).map(|n| format!("{scenario}-every-second-{n}")).collect();
        let manual = format!("{scenario}-manual");
        let mut names = self.tasks.clone();
        names.push(manual.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut recording = Recording {
            handler_time: SLOW_HANDLER,
            slow_tasks: self.tasks.iter().take(setup.slow_tasks).cloned().collect(),
            ..Recording::default()
        };
        if let Some(delay) = setup.send_delay {
            let (port, accepting) = proxy::delaying(listener.local_addr()?.port(), delay).await?;
            recording.base_url = Some(format!("http://127.0.0.1:{port}"));
            self.proxy = Some(accepting);
        }
        let urls = self.nodes.iter().map(Scheduler::url).collect();
        let executor =
            recording_executor_on(listener, &format!("{scenario}-executor"), urls, &names, &self.receipts, &recording)
                .await?;
        self.executor = Some(executor);
        let url = self.nodes[leader].url();
        for task in &self.tasks {
            post(&self.http, &format!("{url}/api/v1/tasks"), &json!({"name": task, "cron_expression": "* * * * * *"}))
                .await?;
        }
        // Fires only by hand: midnight of the first of January.
        let created = post(
            &self.http,
            &format!("{url}/api/v1/tasks"),
            &json!({"name": manual, "cron_expression": "0 0 0 1 1 *"}),
        )
        .await?;
        self.manual_task = created["id"].as_str().map(str::to_owned);
        let count = self.tasks.len();
        wait_for("every task's first fire", Duration::from_secs(30), || async {
            let fired: HashSet<Arc<str>> = snapshot(&self.receipts).into_iter().map(|receipt| receipt.task).collect();
            (fired.len() >= count).then_some(())
        })
        .await
    }

    /// [`Self::launch`] then [`Self::prepare`].
    pub(crate) async fn start(
        ctx: &Context,
        scenario: &str,
        database_url: &str,
        setup: &Setup,
    ) -> anyhow::Result<Self> {
        let mut cluster = Self::launch(ctx, scenario, database_url, setup)?;
        cluster.prepare(scenario, setup).await?;
        Ok(cluster)
    }

    /// Lets the workload run two seconds, then returns the next whole second: the measured window's start.
    pub(crate) async fn warm_up(&self) -> Timestamp {
        tokio::time::sleep(Duration::from_secs(2)).await;
        next_second(Timestamp::now())
    }

    /// The index of the one running scheduler that says it leads (frozen ones do not answer).
    pub(crate) async fn leader(&self) -> Option<usize> {
        crate::procs::leader(&self.quick, &self.nodes).await
    }

    /// A leader other than `old`, once one says so.
    pub(crate) async fn leader_other_than(&self, old: usize) -> Option<usize> {
        for (index, node) in self.nodes.iter().enumerate() {
            if index == old || !node.is_running() {
                continue;
            }
            let status = get(&self.quick, &format!("{}/api/v1/scheduler/status", node.url())).await;
            if status.is_some_and(|status| status["role"] == "leader") {
                return Some(index);
            }
        }
        None
    }

    /// A GET answered 200 by any running scheduler.
    pub(crate) async fn api(&self, path: &str) -> Option<Value> {
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            if let Some(value) = get(&self.http, &format!("{}{path}", node.url())).await {
                return Some(value);
            }
        }
        None
    }

    /// Every execution of `task` scheduled in `[from, to)`.
    pub(crate) async fn executions(&self, task: &str, from: Timestamp, to: Timestamp) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/api/v1/executions?task_id={task}&from={from}&to={to}&limit=500{cursor}");
            let page = self.api(&path).await.ok_or_else(|| anyhow::anyhow!("no scheduler answered GET {path}"))?;
            all.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return Ok(all),
            }
        }
    }

    /// Sends a manual trigger every 200 ms, round robin over the schedulers, until [`Triggers::stop`].
    pub(crate) fn start_triggers(&self) -> Triggers {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(TriggerLog::default()));
        let urls: Vec<String> = self.nodes.iter().map(Scheduler::url).collect();
        let Some(task) = self.manual_task.clone() else {
            return Triggers { stop, log, sending: None };
        };
        let http = client_with_timeout(Duration::from_secs(5));
        let sending = tokio::spawn({
            let (stop, log) = (stop.clone(), log.clone());
            async move {
                let mut requests = Vec::new();
                let mut ticker = tokio::time::interval(TRIGGER_EVERY);
                for n in 0.. {
                    ticker.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let url = format!("{}/api/v1/tasks/{task}/trigger", urls[n % urls.len()]);
                    let (http, log) = (http.clone(), log.clone());
                    requests.push(tokio::spawn(async move {
                        let answer = match http.post(&url).json(&json!({})).send().await {
                            Ok(response) if response.status().is_success() => {
                                let body: Value = response.json().await.unwrap_or(Value::Null);
                                Answer::Acked(body["execution_id"].as_str().map(str::to_owned))
                            }
                            Ok(_) => Answer::Refused,
                            Err(_) => Answer::Unanswered,
                        };
                        let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        match answer {
                            Answer::Acked(Some(id)) => log.acked.push(id),
                            Answer::Acked(None) | Answer::Refused => log.refused += 1,
                            Answer::Unanswered => log.unanswered += 1,
                        }
                    }));
                }
                for request in requests {
                    let _ = request.await;
                }
            }
        });
        Triggers { stop, log, sending: Some(sending) }
    }

    /// Fills `outcome`'s accounting for the slots in `[start, end]` (whole seconds) and the acknowledged triggers.
    pub(crate) async fn account(
        &self,
        outcome: &mut Outcome,
        start: Timestamp,
        end: Timestamp,
        triggers: Option<TriggerLog>,
    ) -> anyhow::Result<()> {
        let receipts = self.window_receipts(start, end);
        let mut counts: BTreeMap<(Arc<str>, Timestamp), u64> = BTreeMap::new();
        for receipt in &receipts {
            *counts.entry((receipt.task.clone(), receipt.scheduled_at)).or_default() += 1;
        }
        let seconds = (end.millis_since(start) / 1000 + 1).max(0) as u64;
        outcome.expected = self.tasks.len() as u64 * seconds;
        outcome.received = counts.len() as u64;
        outcome.duplicated = counts.values().map(|count| count - 1).sum();
        let mut missed_rows = 0;
        let mut missed_slots = 0;
        let mut has_missed_slots = false;
        // What the history says of each slot no executor received: the first lines of an explanation.
        let mut unreceived = Vec::new();
        for task in &self.tasks {
            let executions = self.executions(task, start, end.add_millis(1)).await?;
            for second in 0..seconds {
                let slot = start.add_millis(i64::try_from(second).unwrap_or(0) * 1000);
                if unreceived.len() >= 20 || counts.contains_key(&(Arc::from(task.as_str()), slot)) {
                    continue;
                }
                let rows: Vec<String> = executions
                    .iter()
                    .filter(|execution| {
                        execution["scheduled_at"].as_str().and_then(Timestamp::parse_rfc3339) == Some(slot)
                    })
                    .map(|execution| {
                        format!(
                            "{} attempt {} {}",
                            execution["status"].as_str().unwrap_or("?"),
                            execution["attempt"],
                            execution["error"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                unreceived.push(format!(
                    "{task} {slot}: {}",
                    if rows.is_empty() { "no execution".to_owned() } else { rows.join("; ") }
                ));
            }
            for execution in executions {
                if execution["status"] == "missed" {
                    missed_rows += 1;
                }
                if let Some(slots) = execution.get("missed_slots") {
                    has_missed_slots = true;
                    missed_slots += slots.as_u64().unwrap_or(0);
                }
            }
        }
        outcome.missed_recorded = missed_rows + missed_slots;
        outcome.lost = outcome.expected as i64 - outcome.received as i64 - outcome.missed_recorded as i64;
        outcome.note("missed_rows", missed_rows);
        outcome.note("missed_slots", missed_slots);
        outcome.note("missed_slots_field_present", has_missed_slots);
        outcome.note("unreceived", unreceived);
        outcome.note("window", json!({"start": start, "end": end}));
        if let Some(triggers) = triggers {
            outcome.triggers_acked = triggers.acked.len() as u64;
            outcome.triggers_refused = triggers.refused;
            outcome.triggers_unanswered = triggers.unanswered;
            outcome.acked_lost = self.acked_lost(&triggers.acked).await;
            outcome.note("triggers_refused", triggers.refused);
            outcome.note("triggers_unanswered", triggers.unanswered);
        }
        Ok(())
    }

    /// Acknowledged triggers whose execution is not found (404) by a scheduler.
    async fn acked_lost(&self, acked: &[String]) -> u64 {
        let mut lost = 0;
        for id in acked {
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                let url = format!("{}/api/v1/executions/{id}", node.url());
                match self.http.get(&url).send().await.map(|response| response.status().as_u16()) {
                    Ok(200) => break,
                    Ok(404) => {
                        lost += 1;
                        break;
                    }
                    _ => continue,
                }
            }
        }
        lost
    }

    /// The receipts of the every-second tasks for slots in `[start, end]`.
    pub(crate) fn window_receipts(&self, start: Timestamp, end: Timestamp) -> Vec<Receipt> {
        snapshot(&self.receipts)
            .into_iter()
            .filter(|receipt| receipt.scheduled_at >= start && receipt.scheduled_at <= end)
            .filter(|receipt| self.tasks.iter().any(|task| **task == *receipt.task))
            .collect()
    }

    /// From `at` to the receipt of the first fire of an every-second task scheduled after `at`.
    pub(crate) fn first_fire_after(&self, at: Timestamp) -> Option<i64> {
        snapshot(&self.receipts)
            .into_iter()
            .filter(|receipt| receipt.scheduled_at > at && self.tasks.iter().any(|task| **task == *receipt.task))
            .map(|receipt| receipt.received_at.millis_since(at))
            .min()
    }

    /// Waits up to `deadline` for the first fire scheduled after `at`; its delay from `at`.
    pub(crate) async fn wait_first_fire_after(&self, at: Timestamp, deadline: Duration) -> Option<i64> {
        wait_for("a fire after the fault", deadline, || async { self.first_fire_after(at) }).await.ok()
    }

    /// The longest time between two receipts received in `[from, to]` (or from `from` to the first one).
    pub(crate) fn longest_stall(&self, from: Timestamp, to: Timestamp) -> i64 {
        let mut times: Vec<Timestamp> = snapshot(&self.receipts)
            .into_iter()
            .filter(|receipt| self.tasks.iter().any(|task| **task == *receipt.task))
            .map(|receipt| receipt.received_at)
            .filter(|at| *at >= from && *at <= to)
            .collect();
        times.sort_unstable();
        times.insert(0, from);
        times.push(to);
        times.windows(2).map(|pair| pair[1].millis_since(pair[0])).max().unwrap_or(0)
    }

    /// The sum over running schedulers of `jobs_executions_finished_total{status="missed"}`, or `None` if no
    /// scheduler's `/metrics` answered.
    pub(crate) async fn missed_counter(&self) -> Option<f64> {
        let mut sum = None;
        for node in self.nodes.iter().filter(|node| node.is_running()) {
            let Ok(response) = self.http.get(format!("{}/metrics", node.url())).send().await else { continue };
            let Ok(text) = response.text().await else { continue };
            let value = text
                .lines()
                .find(|line| line.starts_with("jobs_executions_finished_total{status=\"missed\"}"))
                .and_then(|line| line.rsplit(' ').next())
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0);
            sum = Some(sum.unwrap_or(0.0) + value);
        }
        sum
    }

    /// Shuts the executor down and kills the schedulers.
    pub(crate) async fn stop(mut self) {
        if let Some(executor) = self.executor.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), executor.shutdown()).await;
        }
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(proxy) = self.proxy.take() {
            proxy.abort();
        }
    }
}

/// The first whole second after `at`.
pub(crate) fn next_second(at: Timestamp) -> Timestamp {
    Timestamp::from_millis((at.as_millis() / 1000 + 1) * 1000)
}

/// The whole second at or before `at`.
pub(crate) fn this_second(at: Timestamp) -> Timestamp {
    Timestamp::from_millis(at.as_millis() / 1000 * 1000)
}

/// Sleeps until the wall clock reads `at`.
pub(crate) async fn sleep_until(at: Timestamp) {
    let wait = at.millis_since(Timestamp::now());
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// What the manual triggers got back.
#[derive(Debug, Default)]
pub(crate) struct TriggerLog {
    /// Execution ids of the triggers answered 2xx.
    pub(crate) acked: Vec<String>,
    /// Triggers answered otherwise.
    pub(crate) refused: u64,
    /// Triggers with no answer within five seconds.
    pub(crate) unanswered: u64,
}

/// How one trigger was answered: 2xx (with the execution id it named), otherwise, or not at all.
#[derive(Debug)]
enum Answer {
    Acked(Option<String>),
    Refused,
    Unanswered,
}

/// The running trigger loop.
#[derive(Debug)]
pub(crate) struct Triggers {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<TriggerLog>>,
    sending: Option<tokio::task::JoinHandle<()>>,
}

impl Triggers {
    /// Stops sending, waits for the answers in flight and returns what they were.
    pub(crate) async fn stop(mut self) -> TriggerLog {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sending) = self.sending.take() {
            let _ = sending.await;
        }
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}
