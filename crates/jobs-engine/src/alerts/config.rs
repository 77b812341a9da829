//! The `alerts` section.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use jobs_model::{Duration, validate};

/// Where alerts go and how often; no webhook anywhere turns alerts off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// URLs that receive every alert as a JSON POST; empty means none (unless a task has its own).
    pub webhooks: Vec<String>,
    /// Task name → URLs that receive that task's alerts in place of `webhooks` (an empty list silences the task).
    pub task_webhooks: BTreeMap<String, Vec<String>>,
    /// At most one alert per task, and per executor instance, in this window; the ones held back are counted in
    /// the next alert sent (`suppressed`). `0s` sends every alert.
    pub silence: Duration,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// Deliveries retried after a failure, waiting 1s, 2s, 4s… in between.
    pub retries: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            task_webhooks: BTreeMap::new(),
            silence: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

/// Most retries of one delivery (the last wait is then 2^9 = 512 s).
const MAX_RETRIES: u32 = 10;

impl AlertsConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.normalized().map(|_| ())
    }

    /// This config with every URL in its normal form (`jobs_model::validate::http_url`), or the first bad key.
    pub(crate) fn normalized(&self) -> Result<Self, String> {
        let urls = |key: &str, urls: &[String]| -> Result<Vec<String>, String> {
            let mut normal = Vec::with_capacity(urls.len());
            for (index, url) in urls.iter().enumerate() {
                let url = validate::http_url(&format!("{key}[{index}]"), url).map_err(|error| error.to_string())?;
                if !normal.contains(&url) {
                    normal.push(url);
                }
            }
            Ok(normal)
        };
        let webhooks = urls("alerts.webhooks", &self.webhooks)?;
        let mut task_webhooks = BTreeMap::new();
        for (task, list) in &self.task_webhooks {
            let key = format!("alerts.task_webhooks.{task}");
            validate::name(&key, task).map_err(|error| error.to_string())?;
            task_webhooks.insert(task.clone(), urls(&key, list)?);
        }
        if self.timeout.get().is_zero() {
            return Err("alerts.timeout must be greater than zero".to_owned());
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("alerts.retries must be at most {MAX_RETRIES}"));
        }
        Ok(Self { webhooks, task_webhooks, ..self.clone() })
    }
}
