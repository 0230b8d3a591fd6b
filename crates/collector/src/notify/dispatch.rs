//! The dispatcher: sends what is due in the outbox.
//!
//! Each round (on every database commit, and at least once a second) it
//! reads pending rows due now, groups them per (channel, person), and for
//! each group that may send sends one message carrying all of them:
//!
//! - **storm grouping**: after a message to a person on a channel, whatever
//!   else falls due for them within `notify.group_window` waits and goes
//!   out together in the next message;
//! - **rate limit**: a channel sends at most its `rate_limit` messages a
//!   minute; the rest stay in the outbox and go out together, marked as
//!   held, when the limit allows;
//! - **retry**: a failed send is recorded on each fault's timeline and
//!   retried with exponential backoff (`notify.retry_first` doubling up to
//!   `notify.retry_max`) until `notify.give_up_after`.
//!
//! It also sends [`DirectNotice`]s, the collector's own faults that could
//! not be recorded (see `direct`), and tells [`Health`] how each channel
//! fares, for the built-in `notification_channel_failing` rule.
//!
//! Results go back through the [`Outbox`] (the fault stage) as a
//! [`Delivery`] and are committed before the rows are looked at again. A message's id
//! depends only on its rows, so a message re-sent after a crash between
//! sending and recording carries the same id (receivers can drop it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use tokio::sync::{mpsc, watch};

use super::DueNotification;
use super::Kind;
use super::NotifyConfig;
use super::channels::Sender;
use super::direct::{DirectNotice, contact};
use super::render::{Held, Item, Message, render};
use crate::health::Health;
use crate::time::Clock;

/// Where the dispatcher finds due rows and reports what became of them.
/// The fault stage implements it: an outcome is a timeline event too.
pub trait Outbox: Send + Sync + 'static {
    /// Notified after every commit: the outbox may have new rows.
    fn wake(&self) -> Arc<tokio::sync::Notify>;
    /// Pending rows due by `now_ms`, oldest first, at most `limit`.
    fn due(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DueNotification>, String>> + Send;
    /// Records an outcome; done when it is on disk.
    fn record(&self, delivery: Delivery) -> impl Future<Output = Result<(), String>> + Send;
}

/// What became of outbox rows sent in one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// They went out as `message_id`.
    Delivered {
        /// Outbox rows.
        ids: Vec<i64>,
        /// The message.
        message_id: String,
        /// When (ms).
        at_ms: i64,
    },
    /// Sending failed; they are retried after a backoff.
    Failed {
        /// Outbox rows.
        ids: Vec<i64>,
        /// Why.
        error: String,
        /// When (ms).
        at_ms: i64,
    },
    /// A [`DirectNotice`] went out without the outbox: the outbox row the
    /// same change plans for this person and channel is delivered by it.
    Direct {
        /// The fault's rule.
        rule: String,
        /// The fault's series key.
        series: String,
        /// `opened` or `urgent`.
        kind: super::Kind,
        /// Channel.
        channel: String,
        /// The person's name.
        recipient: String,
        /// The person, as the outbox stores a contact.
        contact: String,
        /// The message.
        message_id: String,
        /// When (ms).
        at_ms: i64,
    },
}

type Key = (String, String);

struct Outcome {
    key: Key,
    ids: Vec<i64>,
    message_id: String,
    result: Result<(), String>,
    at_ms: i64,
    /// Set for a direct notice: what it was about.
    direct: Option<(DirectNotice, String)>,
}

/// Sends due notifications until `shutdown`.
pub struct Dispatcher<O: Outbox> {
    outbox: O,
    config: Arc<NotifyConfig>,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    sender: Arc<Sender>,
    last_sent: HashMap<Key, i64>,
    held_since: HashMap<Key, i64>,
    sent_by_channel: HashMap<String, VecDeque<i64>>,
    in_flight: HashSet<Key>,
    health: Arc<Health>,
    direct: Option<mpsc::UnboundedReceiver<DirectNotice>>,
}

impl<O: Outbox> Dispatcher<O> {
    /// A dispatcher for `config`; fails if a channel's client cannot be built.
    pub fn new(
        outbox: O,
        config: Arc<NotifyConfig>,
        clock: Arc<dyn Clock>,
        tz: TimeZone,
    ) -> Result<Self, String> {
        let sender = Arc::new(Sender::new(&config)?);
        Ok(Dispatcher {
            outbox,
            config,
            clock,
            tz,
            sender,
            last_sent: HashMap::new(),
            held_since: HashMap::new(),
            sent_by_channel: HashMap::new(),
            in_flight: HashSet::new(),
            health: Arc::default(),
            direct: None,
        })
    }

    /// Reports each channel's outcomes to `health`, and sends what arrives
    /// on `direct` without the outbox.
    pub fn with_health(mut self, health: Arc<Health>, direct: mpsc::UnboundedReceiver<DirectNotice>) -> Self {
        self.health = health;
        self.direct = Some(direct);
        self
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.outbox.wake();
        let (done_tx, mut done_rx) = mpsc::channel::<Outcome>(256);
        loop {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                Some(notice) = next_direct(&mut self.direct) => {
                    self.send_direct(notice, done_tx.clone());
                    continue;
                }
                Some(outcome) = done_rx.recv() => {
                    self.record(outcome).await;
                    while let Ok(more) = done_rx.try_recv() {
                        self.record(more).await;
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
            let now = self.clock.now_ms();
            let due = match self.outbox.due(now, 10_000).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the notification outbox");
                    continue;
                }
            };
            for (key, rows) in group(due) {
                if self.config.channel(&key.0).is_none() {
                    // Queued under a channel since removed from the config:
                    // recorded as failing (then given up), never silently kept.
                    let error = format!("channel {:?} is no longer configured", key.0);
                    let ids = rows.iter().map(|r| r.id).collect();
                    self.record(Outcome {
                        message_id: String::new(),
                        key,
                        ids,
                        result: Err(error),
                        at_ms: now,
                        direct: None,
                    })
                    .await;
                    continue;
                }
                if let Some(message) = self.admit(&key, rows, now) {
                    self.spawn_send(key, message, now, done_tx.clone());
                }
            }
        }
    }

    /// Whether `key` may send now (grouping window, rate limit); if so, its message.
    fn admit(&mut self, key: &Key, rows: Vec<DueNotification>, now: i64) -> Option<Message> {
        if self.in_flight.contains(key) {
            return None;
        }
        let channel = self.config.channel(&key.0)?;
        if let Some(last) = self.last_sent.get(key)
            && now < last + self.config.group_window_ms
        {
            return None;
        }
        let (count, period_ms) = channel.rate;
        let window = self.sent_by_channel.entry(key.0.clone()).or_default();
        while window.front().is_some_and(|t| *t <= now - period_ms) {
            window.pop_front();
        }
        if window.len() >= count as usize {
            self.held_since.entry(key.clone()).or_insert(now);
            return None;
        }
        window.push_back(now);
        let held = self.held_since.remove(key).map(|since_ms| Held {
            since_ms,
            limit: channel.rate_text.clone(),
        });
        let first = rows.first()?.id;
        let last = rows.last()?.id;
        let person = rows.first()?.person.clone();
        let id = format!("wp-{first}-{last}-{}", rows.len());
        Some(Message {
            id,
            channel: key.0.clone(),
            person,
            items: rows
                .into_iter()
                .map(|r| Item {
                    notification_id: r.id,
                    kind: r.kind,
                    fault: r.fault,
                })
                .collect(),
            held,
        })
    }

    fn spawn_send(&mut self, key: Key, message: Message, now: i64, done: mpsc::Sender<Outcome>) {
        self.in_flight.insert(key.clone());
        self.last_sent.insert(key.clone(), now);
        self.spawn(key, message, now, None, done);
    }

    /// Sends `message` on a task of its own; its outcome comes back on `done`.
    fn spawn(
        &self,
        key: Key,
        message: Message,
        now: i64,
        direct: Option<(DirectNotice, String)>,
        done: mpsc::Sender<Outcome>,
    ) {
        let config = self.config.clone();
        let sender = self.sender.clone();
        let clock = self.clock.clone();
        let rendered = render(&message, &config, &self.tz);
        tokio::spawn(async move {
            let result = match config.channel(&message.channel) {
                Some(channel) => {
                    // The channel's own timeout bounds HTTP; this bounds SMTP too.
                    let limit = channel.timeout + Duration::from_secs(5);
                    match tokio::time::timeout(limit, sender.send(channel, &message, &rendered, &config, now))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(format!("no answer within {limit:?}")),
                    }
                }
                None => Err(format!("channel {:?} is not configured", message.channel)),
            };
            let outcome = Outcome {
                key,
                ids: message.items.iter().map(|i| i.notification_id).collect(),
                message_id: message.id,
                result,
                at_ms: clock.now_ms(),
                direct,
            };
            let _ = done.send(outcome).await;
        });
    }

    /// Sends `notice` once to everyone the routes name now, past the
    /// grouping window and the rate limit: it is about the collector
    /// itself, and there is no outbox row to hold it back with.
    fn send_direct(&mut self, notice: DirectNotice, done: mpsc::Sender<Outcome>) {
        let messages = notice.messages(&self.config);
        if messages.is_empty() {
            tracing::warn!(rule = %notice.rule, summary = %notice.summary,
                "the collector's own fault could not be recorded, and no route names anyone to tell directly");
        }
        let now = self.clock.now_ms();
        for message in messages {
            tracing::warn!(rule = %notice.rule, channel = %message.channel, to = %message.person.name,
                "the collector's own fault could not be recorded: sending it directly");
            let key = (message.channel.clone(), message.person.name.clone());
            let who = contact(&message.person);
            self.spawn(key, message, now, Some((notice.clone(), who)), done.clone());
        }
    }

    async fn record(&mut self, o: Outcome) {
        match &o.result {
            Ok(()) => self.health.channel_delivered(&o.key.0),
            Err(e) => self.health.channel_failed(&o.key.0, e),
        }
        if let Some((notice, contact)) = o.direct {
            let (channel, recipient) = o.key;
            match o.result {
                Ok(()) => {
                    tracing::info!(rule = %notice.rule, %channel, to = %recipient, message = %o.message_id,
                        "sent directly: the collector's own fault, recorded once it can write again");
                    let delivery = Delivery::Direct {
                        rule: notice.rule,
                        series: notice.series,
                        kind: notice.kind,
                        channel,
                        recipient,
                        contact,
                        message_id: o.message_id,
                        at_ms: o.at_ms,
                    };
                    if let Err(e) = self.outbox.record(delivery).await {
                        tracing::warn!(error = %e, "a direct notice's delivery is not recorded yet: kept, and recorded with the next commit that succeeds");
                    }
                }
                Err(error) => {
                    tracing::error!(rule = %notice.rule, %channel, to = %recipient, %error,
                        "sending the collector's own fault directly failed; the outbox sends it once it can be written");
                }
            }
            return;
        }
        let command = match o.result {
            Ok(()) => {
                tracing::info!(channel = %o.key.0, to = %o.key.1, message = %o.message_id, notifications = o.ids.len(), "notification delivered");
                Delivery::Delivered {
                    ids: o.ids,
                    message_id: o.message_id,
                    at_ms: o.at_ms,
                }
            }
            Err(error) => {
                tracing::warn!(channel = %o.key.0, to = %o.key.1, %error, "notification failed; will retry");
                Delivery::Failed {
                    ids: o.ids,
                    error,
                    at_ms: o.at_ms,
                }
            }
        };
        // Committed before the rows are read again, so nothing is sent twice.
        if let Err(e) = self.outbox.record(command).await {
            tracing::error!(error = %e, "cannot record a notification's outcome");
        }
        self.in_flight.remove(&o.key);
    }
}

/// The next direct notice, or never when there is no queue of them.
async fn next_direct(queue: &mut Option<mpsc::UnboundedReceiver<DirectNotice>>) -> Option<DirectNotice> {
    match queue {
        Some(q) => q.recv().await,
        None => std::future::pending().await,
    }
}

/// Rows per (channel, person), in the order of their first row. A
/// reporter is not on the roster: each reported fault's reporter gets
/// messages of their own, never grouped with another's.
fn group(rows: Vec<DueNotification>) -> Vec<(Key, Vec<DueNotification>)> {
    let mut out: Vec<(Key, Vec<DueNotification>)> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for r in rows {
        let who = if matches!(r.kind, Kind::ReporterResolved | Kind::ReporterClosed) {
            format!("{} (reporter of #{})", r.person.name, r.fault.id)
        } else {
            r.person.name.clone()
        };
        let key = (r.channel.clone(), who);
        match index.get(&key) {
            Some(&i) => out[i].1.push(r),
            None => {
                index.insert(key.clone(), out.len());
                out.push((key, vec![r]));
            }
        }
    }
    out
}
