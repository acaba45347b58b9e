//! Unit tests of the saver: journal appends, grouped syncs, folds, faults.
use super::*;
use crate::state::QueuedEvent;
use crate::test_dir::TestDir;
use serde_json::json;

/// A saver on a fresh directory, removed when the last item is dropped.
fn rig(name: &str) -> (Saver, Receiver<CoreMsg>, PathBuf, TestDir) {
    let dir = TestDir::new(&format!("saver-{name}"));
    let path = dir.join("state.json");
    let (tx, rx) = mpsc::channel();
    let saver = Saver::spawn(path.clone(), tx, Duration::ZERO).unwrap();
    (saver, rx, path, dir)
}

fn saved(rx: &Receiver<CoreMsg>) -> (Ticket, Option<String>) {
    match rx.recv_timeout(Duration::from_secs(10)).expect("a report") {
        CoreMsg::Saved { id, error } => (id, error),
        other => panic!("unexpected {other:?}"),
    }
}

/// The job the saver sends for its next sync, taken off the thread's way:
/// the test runs it with its own [`Disk`].
fn take_job(saver: &mut Saver) -> Job {
    let (tx, rx) = mpsc::channel();
    let real = saver.jobs.replace(tx);
    saver.sync().expect("a sync");
    saver.jobs = real;
    rx.try_recv().expect("a job")
}

fn push(state: &mut State, saver: &mut Saver, seq: u64) {
    let event = QueuedEvent::new(seq, None, &json!({"type": "message", "n": seq}));
    saver.log(&Op::Push {
        event: event.clone(),
    });
    state.events.push_back(event);
    state.next_seq = seq + 1;
}

fn reload(path: &Path) -> State {
    let (s, how) = state::load(path, "http://x", "bot");
    assert_eq!(how, state::Loaded::Resumed);
    s
}

#[test]
fn changes_are_appended_and_one_sync_covers_them() {
    let (mut saver, rx, path, _dir) = rig("append");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    push(&mut s, &mut saver, 0);
    push(&mut s, &mut saver, 1);
    saver.flush().unwrap();
    let t = saver.sync().expect("a sync");
    assert_eq!(saver.sync(), Some(t), "nothing new: the same sync");
    assert_eq!(saved(&rx), (t, None));
    assert!(saver.on_saved(t, None));
    assert_eq!(reload(&path).events.len(), 2);
}

#[test]
fn syncs_queued_together_are_done_once() {
    let dir = TestDir::new("saver-batch");
    let f = Arc::new(create(&dir.join("j")).unwrap());
    let g = Arc::new(create(&dir.join("k")).unwrap());
    let jobs = |ids: &[(u64, &Arc<File>)]| {
        ids.iter()
            .map(|(id, f)| Job::Sync {
                id: *id,
                file: (*f).clone(),
                spool: Vec::new(),
            })
            .collect::<Vec<_>>()
    };
    let disk = &mut Disk::new(Duration::ZERO);
    let out = do_batch(jobs(&[(1, &f), (2, &f), (3, &f)]), disk);
    assert_eq!(out, vec![(3, None)]);
    let out = do_batch(jobs(&[(4, &f), (5, &g)]), disk);
    assert_eq!(out, vec![(4, None), (5, None)]);
}

/// Two requests with files accepted together: one sync pass, the copies
/// first (each once), the spool directory once, then the journal once.
#[test]
fn a_group_syncs_its_spooled_copies_then_the_journal_once() {
    let (mut saver, rx, path, _dir) = rig("spool");
    let spool = path.parent().unwrap().join("spool");
    fs::create_dir_all(&spool).unwrap();
    let copy = |name: &str| {
        let p = spool.join(name);
        fs::write(&p, b"jpeg").unwrap();
        crate::model::SpooledFile {
            path: p.display().to_string(),
            name: name.into(),
            size: Some(4),
        }
    };
    let (a, b, c) = (copy("k1-0-a.jpg"), copy("k1-1-b.jpg"), copy("k2-0-c.jpg"));
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    push(&mut s, &mut saver, 0);
    saver.spooled(&[a.clone(), b.clone()]);
    saver.flush().unwrap();
    let Job::Sync {
        id: 1,
        file,
        spool: first,
    } = take_job(&mut saver)
    else {
        panic!("a sync")
    };
    push(&mut s, &mut saver, 1);
    saver.spooled(std::slice::from_ref(&c));
    saver.flush().unwrap();
    let Job::Sync {
        id: 2,
        spool: second,
        ..
    } = take_job(&mut saver)
    else {
        panic!("a sync")
    };
    let group = vec![
        Job::Sync {
            id: 1,
            file: file.clone(),
            spool: first,
        },
        Job::Sync {
            id: 2,
            file,
            spool: second,
        },
    ];
    let disk = &mut Disk::new(Duration::ZERO);
    assert_eq!(
        do_batch(group, disk),
        vec![(2, None)],
        "one outcome: the ok of both"
    );
    let p = |f: &crate::model::SpooledFile| Synced::Spooled(PathBuf::from(&f.path));
    let expected = vec![
        p(&a),
        p(&b),
        p(&c),
        Synced::SpoolDir(spool),
        Synced::Journal,
    ];
    assert_eq!(
        disk.synced, expected,
        "copies, their directory, then the journal"
    );
    assert_eq!(disk.synced.len(), 3 + 1 + 1, "durable writes of the group");
    drop(rx);
}

/// A copy that cannot be made durable holds the `ok`: the sync fails and
/// the journal is not synced over it (the core keeps the reply waiting).
#[test]
fn a_spooled_copy_that_cannot_be_synced_holds_the_ok() {
    let (mut saver, rx, path, _dir) = rig("spool-bad");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    push(&mut s, &mut saver, 0);
    // Its "directory" is a regular file: opening it fails (not a directory).
    let bad = path.display().to_string() + "/k3-0-d.jpg";
    let f = crate::model::SpooledFile {
        path: bad.clone(),
        name: "d.jpg".into(),
        size: Some(1),
    };
    saver.spooled(&[f]);
    saver.flush().unwrap();
    let t = saver.sync().expect("a sync");
    let (id, error) = saved(&rx);
    assert_eq!(id, t);
    let error = error.expect("the sync fails");
    assert!(
        error.contains("spooled copy") && error.contains(&bad),
        "{error}"
    );
    assert!(!saver.on_saved(id, Some(error)), "no ok after this write");
}

/// A copy whose request already ended (and removed it) needs no sync.
#[test]
fn a_copy_already_removed_is_skipped() {
    let disk = &mut Disk::new(Duration::ZERO);
    let gone = std::env::temp_dir().join(format!("rcd-saver-{}-gone.jpg", std::process::id()));
    assert!(disk.sync_spool(&[gone]).is_ok());
    assert!(disk.synced.is_empty());
}

#[test]
fn a_fold_writes_the_state_whole_and_starts_a_new_journal() {
    let (mut saver, rx, path, _dir) = rig("fold");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    push(&mut s, &mut saver, 0);
    saver.flush().unwrap();
    let t = saver.fold(&mut s).unwrap();
    push(&mut s, &mut saver, 1);
    saver.flush().unwrap();
    let [journal, next] = journal::paths(&path);
    assert!(
        next.exists(),
        "changes after the fold point go to the new journal"
    );
    assert_eq!(saved(&rx), (t, None));
    assert!(saver.on_saved(t, None));
    assert!(!next.exists() && journal.exists());
    let on_disk: State = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk.events.len(),
        1,
        "the file holds what was there at the fold"
    );
    assert_eq!(reload(&path).events.len(), 2, "the journal holds the rest");
}

#[test]
fn the_journal_is_folded_once_it_outgrows_the_state() {
    let (mut saver, _rx, _path, _dir) = rig("due");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    let now = Instant::now();
    assert!(!saver.fold_due(now));
    let mut seq = 0;
    while saver.journal_len <= FOLD_MIN {
        push(&mut s, &mut saver, seq);
        saver.flush().unwrap();
        seq += 1;
    }
    assert!(saver.fold_due(now));
}

#[test]
fn a_write_error_is_a_fault_until_a_fold_succeeds() {
    let (mut saver, rx, path, _dir) = rig("fault");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    saver.break_journal();
    push(&mut s, &mut saver, 0);
    assert!(saver.flush().is_err());
    assert!(saver.fault().is_some());
    assert_eq!(saver.sync(), None, "no sync of a broken journal");
    let t = saver.fold(&mut s).unwrap();
    assert_eq!(saved(&rx), (t, None));
    assert!(saver.on_saved(t, None));
    assert!(saver.fault().is_none());
    assert_eq!(
        reload(&path).events.len(),
        1,
        "the fold wrote what the journal missed"
    );
}

#[test]
fn at_the_stop_the_state_is_one_flat_file() {
    let (mut saver, _rx, path, _dir) = rig("close");
    let mut s = State::fresh("http://x", "bot");
    saver.open(&mut s);
    push(&mut s, &mut saver, 0);
    saver.flush().unwrap();
    saver.close(&mut s).unwrap();
    for p in journal::paths(&path) {
        assert!(!p.exists(), "{} left", p.display());
    }
    let on_disk: State = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk.events.len(), 1);
}

#[test]
fn a_state_file_of_the_previous_builds_loads_events_and_all() {
    let (mut saver, _rx, path, _dir) = rig("old");
    let old = r#"{"schema":1,"server_url":"http://x","login":"bot","rooms":{},
        "events":[{"seq":4,"mark":["R",5],"event":{"type":"message","id":"m1","text":"hi"}},
                  {"seq":5,"event":{"type":"dropped","count":2}}],
        "next_seq":6,"clean_stop":true}"#;
    fs::write(&path, old).unwrap();
    let mut s = reload(&path);
    assert_eq!(s.events.len(), 2);
    assert_eq!(s.events[0].kind, crate::state::EventKind::Message);
    assert_eq!(s.events[0].value()["text"], "hi");
    assert_eq!(s.events[1].kind, crate::state::EventKind::Dropped);
    assert_eq!(s.journal_applied, 0);
    saver.open(&mut s);
    push(&mut s, &mut saver, 6);
    saver.flush().unwrap();
    assert_eq!(reload(&path).events.len(), 3);
}
