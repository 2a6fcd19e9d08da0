//! State-machine tests of `NodeMachine`: events in, and assertions on the actions that come out.

use proptest::prelude::*;

use super::*;

fn spec(id: &str) -> InstanceSpec {
    InstanceSpec {
        id: id.to_owned(),
        app: spread_core::AppName::parse("shop").unwrap(),
        app_id: spread_core::AppId(uuid::Uuid::nil()),
        release: 1,
        process: spread_core::ProcessType::parse("web").unwrap(),
        index: 1,
        image_digest: "sha256:aa".to_owned(),
        argv: vec!["/app/server".to_owned()],
        env: vec![("PORT".to_owned(), "8080".to_owned())],
        working_dir: None,
        user: None,
        memory_bytes: None,
        cpu_millis: None,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn crash() -> Exit {
    Exit {
        code: Some(1),
        signal: None,
        oom_killed: false,
    }
}

/// The actions other than reports, which most tests do not care about.
fn work(m: &mut NodeMachine) -> Vec<Action> {
    m.take_actions()
        .into_iter()
        .filter(|a| !matches!(a, Action::Report(_)))
        .collect()
}

fn running(id: &str) -> NodeMachine {
    let mut m = NodeMachine::default();
    m.handle(Event::Assigned(vec![spec(id)]), secs(0.0));
    m.handle(Event::Started { id: id.to_owned() }, secs(0.0));
    m.take_actions();
    m
}

#[test]
fn assigned_instances_are_started_and_reported() {
    let mut m = NodeMachine::default();
    m.handle(
        Event::Assigned(vec![spec("web-1"), spec("web-2")]),
        secs(0.0),
    );
    let actions = m.take_actions();
    assert!(actions.contains(&Action::Start(spec("web-1"))));
    assert!(actions.contains(&Action::Start(spec("web-2"))));
    let states: Vec<_> = m.statuses().iter().map(|s| s.state).collect();
    assert_eq!(states, [InstanceState::Starting, InstanceState::Starting]);
}

#[test]
fn a_crashed_instance_is_restarted_after_backoff() {
    let mut m = running("web-1");
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(5.0),
    );
    assert_eq!(work(&mut m), []);
    assert_eq!(m.statuses()[0].state, InstanceState::Crashed);
    assert_eq!(m.next_deadline(), Some(secs(5.1)));
    m.handle(Event::Tick, secs(5.05));
    assert_eq!(work(&mut m), [], "not before the backoff is over");
    m.handle(Event::Tick, secs(5.1));
    assert_eq!(work(&mut m), [Action::Start(spec("web-1"))]);
    assert_eq!(m.statuses()[0].restarts, 1);
}

#[test]
fn a_crash_loop_backs_off_doubling_up_to_thirty_seconds() {
    let mut m = running("web-1");
    let mut now = secs(0.0);
    let mut delays = Vec::new();
    for _ in 0..12 {
        m.handle(
            Event::Exited {
                id: "web-1".into(),
                exit: crash(),
            },
            now,
        );
        let deadline = m.next_deadline().unwrap();
        delays.push((deadline - now).as_millis());
        now = deadline;
        m.handle(Event::Tick, now);
        m.handle(Event::Started { id: "web-1".into() }, now);
        m.take_actions();
    }
    assert_eq!(
        delays,
        [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
        ]
    );
    assert_eq!(
        m.statuses()[0].restarts,
        12,
        "the crash loop is visible in the restart count"
    );
}

#[test]
fn a_minute_of_healthy_running_resets_the_backoff() {
    let mut m = running("web-1");
    for t in [0.0, 1.0, 2.0] {
        m.handle(
            Event::Exited {
                id: "web-1".into(),
                exit: crash(),
            },
            secs(t),
        );
        m.handle(Event::Tick, secs(t + 0.9));
        m.handle(Event::Started { id: "web-1".into() }, secs(t + 0.9));
    }
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(3.0 + 60.0),
    );
    assert_eq!(m.next_deadline(), Some(secs(63.1)));
}

#[test]
fn an_oom_kill_is_reported_as_such() {
    let mut m = running("web-1");
    let oom = Exit {
        code: None,
        signal: Some(9),
        oom_killed: true,
    };
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: oom,
        },
        secs(1.0),
    );
    let reports: Vec<_> = m
        .take_actions()
        .into_iter()
        .filter_map(|a| {
            if let Action::Report(s) = a {
                Some(s)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(reports.last().unwrap().state, InstanceState::OomKilled);
    assert_eq!(reports.last().unwrap().last_exit, Some(oom));
}

#[test]
fn unassigned_instances_are_stopped_then_removed() {
    let mut m = running("web-1");
    m.handle(Event::Assigned(vec![]), secs(1.0));
    assert_eq!(
        work(&mut m),
        [Action::Stop {
            id: "web-1".into(),
            grace: STOP_GRACE
        }]
    );
    assert_eq!(m.statuses()[0].state, InstanceState::Stopping);
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: Exit {
                code: None,
                signal: Some(15),
                oom_killed: false,
            },
        },
        secs(2.0),
    );
    assert_eq!(work(&mut m), [Action::Remove { id: "web-1".into() }]);
    assert!(m.statuses().is_empty());
    m.handle(Event::Tick, secs(100.0));
    assert_eq!(work(&mut m), [], "a removed instance is never restarted");
}

#[test]
fn an_instance_waiting_out_its_backoff_is_removed_at_once_when_unassigned() {
    let mut m = running("web-1");
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(1.0),
    );
    m.handle(Event::Assigned(vec![]), secs(1.01));
    assert_eq!(work(&mut m), [Action::Remove { id: "web-1".into() }]);
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn a_changed_spec_stops_the_old_process_and_starts_the_new_one() {
    let mut m = running("web-1");
    let mut bigger = spec("web-1");
    bigger.memory_bytes = Some(512 << 20);
    m.handle(Event::Assigned(vec![bigger.clone()]), secs(1.0));
    assert_eq!(
        work(&mut m),
        [Action::Stop {
            id: "web-1".into(),
            grace: STOP_GRACE
        }]
    );
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(2.0),
    );
    assert_eq!(work(&mut m), [Action::Start(bigger)]);
    assert_eq!(m.statuses()[0].restarts, 0, "a replacement is not a crash");
}

#[test]
fn a_recovered_instance_is_supervised_without_being_started_again() {
    let mut m = NodeMachine::default();
    m.handle(
        Event::Recovered {
            spec: Box::new(spec("web-1")),
            running_since: secs(0.0),
        },
        secs(30.0),
    );
    m.handle(Event::Assigned(vec![spec("web-1")]), secs(30.0));
    assert_eq!(work(&mut m), [], "it keeps running: same pid, no restart");
    assert_eq!(m.statuses()[0].state, InstanceState::Running);
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(31.0),
    );
    m.handle(Event::Tick, secs(31.1));
    assert_eq!(work(&mut m), [Action::Start(spec("web-1"))]);
}

#[test]
fn a_failed_start_backs_off_like_a_crash() {
    let mut m = NodeMachine::default();
    m.handle(Event::Assigned(vec![spec("web-1")]), secs(0.0));
    m.take_actions();
    m.handle(
        Event::StartFailed {
            id: "web-1".into(),
            reason: "no such image".into(),
        },
        secs(0.0),
    );
    assert_eq!(m.statuses()[0].state, InstanceState::Crashed);
    assert_eq!(m.next_deadline(), Some(secs(0.1)));
}

// === properties ===

fn arb_event() -> impl Strategy<Value = Event> {
    let id = prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(str::to_owned);
    let ids = proptest::collection::btree_set(prop_oneof![Just("a"), Just("b"), Just("c")], 0..3);
    prop_oneof![
        (ids, any::<bool>()).prop_map(|(ids, big)| Event::Assigned(
            ids.into_iter()
                .map(|id| {
                    let mut s = spec(id);
                    s.memory_bytes = big.then_some(1 << 30);
                    s
                })
                .collect()
        )),
        id.clone().prop_map(|id| Event::Started { id }),
        id.clone().prop_map(|id| Event::StartFailed {
            id,
            reason: "x".into()
        }),
        (id, any::<bool>()).prop_map(|(id, oom)| Event::Exited {
            id,
            exit: Exit {
                code: Some(1),
                signal: None,
                oom_killed: oom
            }
        }),
        Just(Event::Tick),
    ]
}

proptest! {
    /// Whatever happens, an instance is never started twice without exiting in between, and
    /// nothing is removed while its process may still run.
    #[test]
    fn starts_and_removals_stay_consistent(events in proptest::collection::vec((arb_event(), 0u64..5000), 0..80)) {
        let mut m = NodeMachine::default();
        let mut now = Duration::ZERO;
        // What the fake world knows: which instances have a live (or starting) process.
        let mut live: std::collections::BTreeSet<String> = Default::default();
        for (event, step_ms) in events {
            now += Duration::from_millis(step_ms);
            // The world only reports exits and starts of processes it has.
            let event = match event {
                Event::Exited { id, .. } | Event::Started { id } | Event::StartFailed { id, .. } if !live.contains(&id) => Event::Tick,
                e => e,
            };
            if let Event::Exited { id, .. } | Event::StartFailed { id, .. } = &event {
                live.remove(id);
            }
            m.handle(event, now);
            for action in m.take_actions() {
                match action {
                    Action::Start(s) => prop_assert!(live.insert(s.id.clone()), "{} started while already live", s.id),
                    Action::Remove { id } => prop_assert!(!live.contains(&id), "{id} removed while live"),
                    Action::Stop { id, .. } => prop_assert!(live.contains(&id), "{id} stopped while not live"),
                    Action::Report(_) => {}
                }
            }
        }
    }
}

#[test]
fn state_names_are_the_serialized_ones() {
    use InstanceState::*;
    for state in [Starting, Running, Crashed, OomKilled, Stopping, Stopped] {
        assert_eq!(
            serde_json::to_value(state).unwrap(),
            serde_json::Value::from(state.as_str())
        );
    }
}

#[test]
fn health_is_reported_while_running_and_cleared_when_the_process_ends() {
    let mut m = running("web-1");
    assert!(
        !m.statuses()[0].healthy,
        "not healthy before its check passed"
    );
    m.handle(
        Event::Health {
            id: "web-1".into(),
            healthy: true,
        },
        secs(1.0),
    );
    let reports: Vec<Action> = m.take_actions();
    assert!(
        matches!(&reports[..], [Action::Report(s)] if s.healthy),
        "{reports:?}"
    );
    // The same news again changes nothing and reports nothing.
    m.handle(
        Event::Health {
            id: "web-1".into(),
            healthy: true,
        },
        secs(2.0),
    );
    assert!(m.take_actions().is_empty());

    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(3.0),
    );
    assert!(
        !m.statuses()[0].healthy,
        "a crashed instance is not healthy"
    );
    // A late check result of the old process is ignored while it is not running.
    m.handle(
        Event::Health {
            id: "web-1".into(),
            healthy: true,
        },
        secs(3.1),
    );
    assert!(!m.statuses()[0].healthy);
}

#[test]
fn an_instance_being_stopped_is_no_longer_healthy() {
    let mut m = running("web-1");
    m.handle(
        Event::Health {
            id: "web-1".into(),
            healthy: true,
        },
        secs(1.0),
    );
    m.handle(Event::Assigned(vec![]), secs(2.0));
    let status = m.statuses().pop().unwrap();
    assert_eq!(status.state, InstanceState::Stopping);
    assert!(!status.healthy);
}

#[test]
fn a_crashed_instance_no_longer_wanted_is_removed_and_reported_stopped() {
    let mut m = running("web-1");
    m.handle(
        Event::Exited {
            id: "web-1".into(),
            exit: crash(),
        },
        secs(1.0),
    );
    m.take_actions();
    m.handle(Event::Assigned(vec![]), secs(1.05));
    let actions = m.take_actions();
    assert!(
        matches!(&actions[..], [Action::Remove { id }, Action::Report(s)] if id == "web-1" && s.state == InstanceState::Stopped),
        "{actions:?}"
    );
    assert!(m.statuses().is_empty());
}
