//! Login throttling: failed logins slow down further attempts per account and per client.
//!
//! In memory, per process: a restart forgets the counters, and two certmill processes keep
//! their own. Each table is bounded ([`Policy::capacity`]); when full, entries that are already
//! forgotten are purged, and if none are, the entry quiet for longest is evicted. Keys are the
//! lower-cased username (whether or not the user exists, so a refusal reveals nothing) and the
//! client address (IPv4, or the /64 of an IPv6 address, since one host usually holds a /64).
//!
//! A password check takes tens of milliseconds, so a burst of concurrent guesses would all pass
//! a check-then-count throttle before the first failure is counted. [`Throttle::begin`]
//! therefore counts the attempts being verified with the failures: once those could reach the
//! free failures, further attempts are refused until the pending ones are settled, and past the
//! free failures only one attempt at a time is verified.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// How one table counts failures and delays attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before attempts are delayed.
    pub free_failures: u32,
    /// Delay after the first failure past the free ones, in seconds; each further failure
    /// doubles it.
    pub base_delay_secs: u64,
    /// Longest delay, in seconds.
    pub max_delay_secs: u64,
    /// Failures are forgotten after this many seconds with no failure and no delay running.
    pub forget_after_secs: u64,
    /// Most keys tracked.
    pub capacity: usize,
}

/// Per account: 5 failures within 15 minutes, then 2 s, 4 s, 8 s, ... up to 15 minutes.
pub const ACCOUNT_POLICY: Policy = Policy {
    free_failures: 5,
    base_delay_secs: 2,
    max_delay_secs: 15 * 60,
    forget_after_secs: 15 * 60,
    capacity: 65_536,
};

/// Per client address: as per account but 20 free failures, since several people may share an
/// address behind NAT. A success does not reset it, so one valid account cannot launder a
/// password-spraying client.
pub const CLIENT_POLICY: Policy = Policy {
    free_failures: 20,
    ..ACCOUNT_POLICY
};

/// Failures recorded for one key.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last_failure: i64,
    blocked_until: i64,
    /// Attempts begun and not yet settled.
    in_flight: u32,
}

impl Failures {
    /// Time after which the entry may be forgotten.
    fn forgotten_at(&self, policy: &Policy) -> i64 {
        self.last_failure
            .max(self.blocked_until)
            .saturating_add(secs(policy.forget_after_secs))
    }
}

/// One bounded table of failures.
#[derive(Debug)]
struct Table<K> {
    policy: Policy,
    entries: Mutex<HashMap<K, Failures>>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(policy: Policy) -> Table<K> {
        Table {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Failures>> {
        // A panic while holding the lock leaves at worst one counter half updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds until `key` may try again, if it is delayed.
    fn retry_after(&self, key: &K, now: i64) -> Option<u64> {
        let entries = self.lock();
        let failures = entries.get(key)?;
        (failures.blocked_until > now).then(|| {
            u64::try_from(failures.blocked_until - now).unwrap_or(self.policy.max_delay_secs)
        })
    }

    /// The entry of `key`, made room for and created if need be, its count forgotten after a
    /// quiet window.
    fn entry<'a>(
        policy: &Policy,
        entries: &'a mut HashMap<K, Failures>,
        key: &K,
        now: i64,
    ) -> &'a mut Failures {
        if !entries.contains_key(key) && entries.len() >= policy.capacity {
            entries.retain(|_, f| f.in_flight > 0 || f.forgotten_at(policy) > now);
            if entries.len() >= policy.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, failures)| failures.forgotten_at(policy))
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        let failures = entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            last_failure: now,
            blocked_until: now,
            in_flight: 0,
        });
        if failures.forgotten_at(policy) <= now {
            failures.count = 0;
        }
        failures
    }

    /// Begins an attempt of `key`: refused with the seconds to wait while a delay runs, or
    /// while the attempts in flight could already use up the free failures (the second ends
    /// when they are settled, so the wait asked is one second).
    fn begin(&self, key: &K, now: i64) -> Result<(), u64> {
        let policy = &self.policy;
        let mut entries = self.lock();
        let failures = Self::entry(policy, &mut entries, key, now);
        if failures.blocked_until > now {
            return Err(
                u64::try_from(failures.blocked_until - now).unwrap_or(policy.max_delay_secs)
            );
        }
        if failures.in_flight > 0
            && failures.count.saturating_add(failures.in_flight) >= policy.free_failures
        {
            return Err(1);
        }
        failures.in_flight += 1;
        Ok(())
    }

    /// Ends an attempt begun with [`Table::begin`] without counting it.
    fn release(&self, key: &K) {
        let mut entries = self.lock();
        if let Some(failures) = entries.get_mut(key) {
            failures.in_flight = failures.in_flight.saturating_sub(1);
            if failures.in_flight == 0 && failures.count == 0 {
                entries.remove(key);
            }
        }
    }

    fn record_failure(&self, key: &K, now: i64) {
        let policy = &self.policy;
        let mut entries = self.lock();
        let failures = Self::entry(policy, &mut entries, key, now);
        failures.count = failures.count.saturating_add(1);
        failures.last_failure = now;
        if failures.count >= policy.free_failures {
            failures.blocked_until = now.saturating_add(secs(delay(policy, failures.count)));
        }
    }

    fn forget(&self, key: &K) {
        let mut entries = self.lock();
        // Attempts still in flight keep their entry, with no failure counted.
        match entries.get_mut(key) {
            Some(failures) if failures.in_flight > 0 => {
                failures.count = 0;
                failures.blocked_until = failures.last_failure;
            }
            _ => {
                entries.remove(key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The delay after the `count`-th failure within the window (`count >= free_failures`).
fn delay(policy: &Policy, count: u32) -> u64 {
    let doublings = (count - policy.free_failures).min(32);
    policy
        .base_delay_secs
        .saturating_mul(1u64 << doublings)
        .min(policy.max_delay_secs)
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The throttle of [`super::Auth::login`]: one table per account, one per client.
#[derive(Debug)]
pub(crate) struct Throttle {
    accounts: Table<String>,
    clients: Table<IpAddr>,
}

impl Throttle {
    pub(crate) fn new(account: Policy, client: Policy) -> Throttle {
        Throttle {
            accounts: Table::new(account),
            clients: Table::new(client),
        }
    }

    /// Seconds until this account may try again from this client, if either is delayed. The
    /// server goes through [`Throttle::begin`]; this and [`Throttle::failure`] test the policy.
    #[cfg(test)]
    pub(crate) fn retry_after(&self, username: &str, client: IpAddr, now: i64) -> Option<u64> {
        let account = self.accounts.retry_after(&account_key(username), now);
        let client = self.clients.retry_after(&client_key(client), now);
        account.max(client)
    }

    /// Begins a login of `username` from `client`, to be settled with [`Attempt::failed`] or
    /// [`Attempt::succeeded`]; refused with the seconds to wait when either is delayed, or when
    /// the attempts already being verified could use up the free failures.
    pub(crate) fn begin<'a>(
        &'a self,
        username: &str,
        client: IpAddr,
        now: i64,
    ) -> Result<Attempt<'a>, u64> {
        let account = account_key(username);
        let client = client_key(client);
        if let Err(wait) = self.accounts.begin(&account, now) {
            let client_wait = self.clients.retry_after(&client, now).unwrap_or(0);
            return Err(wait.max(client_wait));
        }
        if let Err(wait) = self.clients.begin(&client, now) {
            self.accounts.release(&account);
            return Err(wait);
        }
        Ok(Attempt {
            throttle: self,
            account,
            client,
            settled: false,
        })
    }

    /// Records a failed login of `username` from `client`.
    #[cfg(test)]
    pub(crate) fn failure(&self, username: &str, client: IpAddr, now: i64) {
        self.accounts.record_failure(&account_key(username), now);
        self.clients.record_failure(&client_key(client), now);
    }

    /// Records a successful login: the account's failures are forgotten, the client's are not.
    pub(crate) fn success(&self, username: &str) {
        self.accounts.forget(&account_key(username));
    }
}

/// A login being verified (counted as in flight); dropped unsettled, it counts nothing.
#[derive(Debug)]
pub(crate) struct Attempt<'a> {
    throttle: &'a Throttle,
    account: String,
    client: IpAddr,
    settled: bool,
}

impl Attempt<'_> {
    /// The secret was wrong: a failure for the account and the client.
    pub(crate) fn failed(mut self, now: i64) {
        self.settled = true;
        self.throttle.accounts.release(&self.account);
        self.throttle.clients.release(&self.client);
        self.throttle.accounts.record_failure(&self.account, now);
        self.throttle.clients.record_failure(&self.client, now);
    }

    /// The secret was right: the account's failures are forgotten, the client's are not.
    pub(crate) fn succeeded(mut self) {
        self.settled = true;
        self.throttle.clients.release(&self.client);
        self.throttle.accounts.release(&self.account);
        self.throttle.accounts.forget(&self.account);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.accounts.release(&self.account);
            self.throttle.clients.release(&self.client);
        }
    }
}

fn account_key(username: &str) -> String {
    // Usernames compare ignoring ASCII case in the store; so do their counters.
    username.to_ascii_lowercase()
}

/// The address an attacker cannot trivially vary: IPv4 as is (IPv4-mapped IPv6 included), the
/// /64 prefix of IPv6.
fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const T: i64 = 1_000_000;

    #[test]
    fn five_failures_then_delays_double_up_to_the_cap() {
        let throttle = Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY);
        for _ in 0..4 {
            throttle.failure("alice", HOST, T);
            assert_eq!(throttle.retry_after("alice", HOST, T), None);
        }
        throttle.failure("alice", HOST, T);
        assert_eq!(throttle.retry_after("alice", HOST, T), Some(2));
        assert_eq!(throttle.retry_after("ALICE", HOST, T + 1), Some(1));
        assert_eq!(throttle.retry_after("alice", HOST, T + 2), None);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for n in 6..=16u32 {
            throttle.failure("alice", HOST, T + 10);
            got.push(
                throttle
                    .retry_after("alice", HOST, T + 10)
                    .expect("delayed"),
            );
            expected.push((2u64 << (n - 5)).min(900));
        }
        assert_eq!(got, expected);
        assert_eq!(*got.last().expect("some"), 900, "capped at 15 minutes");
        // Another account from another address is not affected.
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(throttle.retry_after("bob", other, T + 10), None);
    }

    #[test]
    fn success_resets_the_account_but_not_the_client() {
        let throttle = Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY);
        for _ in 0..5 {
            throttle.failure("alice", HOST, T);
        }
        assert!(throttle.retry_after("alice", HOST, T).is_some());
        throttle.success("alice");
        assert_eq!(throttle.retry_after("alice", HOST, T), None);
        assert_eq!(throttle.clients.lock()[&HOST].count, 5);
    }

    #[test]
    fn a_client_spraying_many_accounts_is_delayed() {
        let throttle = Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY);
        for n in 0..20 {
            throttle.failure(&format!("user{n}"), HOST, T);
        }
        assert_eq!(throttle.retry_after("fresh", HOST, T), Some(2));
        let elsewhere = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert_eq!(throttle.retry_after("fresh", elsewhere, T), None);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_window() {
        let throttle = Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY);
        for _ in 0..4 {
            throttle.failure("alice", HOST, T);
        }
        // 15 minutes later, 4 more failures do not reach the threshold.
        for _ in 0..4 {
            throttle.failure("alice", HOST, T + 900);
        }
        assert_eq!(throttle.retry_after("alice", HOST, T + 900), None);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(client_key(IpAddr::V6(a)), client_key(IpAddr::V6(b)));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(client_key(IpAddr::V6(mapped)), HOST);
    }

    #[test]
    fn attempts_in_flight_count_against_the_free_failures() {
        let throttle = Throttle::new(ACCOUNT_POLICY, CLIENT_POLICY);
        // A burst: five attempts may be verified at once, the sixth waits for them.
        let burst: Vec<Attempt<'_>> = (0..5)
            .map(|_| {
                throttle
                    .begin("alice", HOST, T)
                    .expect("within the free failures")
            })
            .collect();
        assert_eq!(throttle.begin("ALICE", HOST, T).map(|_| ()), Err(1));
        for attempt in burst {
            attempt.failed(T);
        }
        assert_eq!(throttle.begin("alice", HOST, T).map(|_| ()), Err(2));
        // After the delay, one attempt at a time.
        let one = throttle
            .begin("alice", HOST, T + 2)
            .expect("the delay passed");
        assert_eq!(throttle.begin("alice", HOST, T + 2).map(|_| ()), Err(1));
        one.failed(T + 2);
        assert_eq!(throttle.begin("alice", HOST, T + 2).map(|_| ()), Err(4));
        // An attempt dropped unsettled (an error while verifying) counts nothing.
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        drop(throttle.begin("bob", other, T).expect("bob"));
        assert!(throttle.accounts.lock().get("bob").is_none());
        // A success forgets the account's failures.
        throttle
            .begin("alice", HOST, T + 6)
            .expect("the second delay passed")
            .succeeded();
        assert!(throttle.begin("alice", HOST, T + 6).is_ok());
    }

    #[test]
    fn tables_stay_within_their_capacity() {
        let small = Policy {
            capacity: 3,
            ..ACCOUNT_POLICY
        };
        let table: Table<String> = Table::new(small);
        for n in 0..10 {
            table.record_failure(&format!("user{n}"), T + n);
        }
        assert_eq!(table.len(), 3);
        // The newest keys are kept.
        assert!(table.lock().contains_key("user9"));
        assert!(!table.lock().contains_key("user0"));
    }
}
