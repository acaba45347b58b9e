//! Unit tests of the file rules, on real files in a temporary directory.
use super::*;
use crate::test_dir::TestDir;
use std::os::unix::fs::symlink;
use std::process::Command;

fn tmp(name: &str) -> TestDir {
    let d = TestDir::new(&format!("files-{name}"));
    fs::create_dir_all(d.join("allowed")).unwrap();
    d
}

/// Rules allowing `<d>/allowed`, with a state file and a password file in `<d>`.
fn rules(d: &Path) -> FileRules {
    let password = d.join("password");
    fs::write(&password, "secret\n").unwrap();
    fs::write(d.join("state.json"), "{}").unwrap();
    FileRules::new(
        &[d.join("allowed")],
        &[password],
        &d.join("state.json"),
        1000,
    )
}

fn refusal(r: &FileRules, p: &Path) -> Refusal {
    r.open(p.to_str().unwrap()).map(|_| ()).unwrap_err()
}

#[test]
fn a_file_in_an_allowed_directory_opens_with_its_size() {
    let d = tmp("ok");
    let r = rules(&d);
    fs::write(d.join("allowed/snap.jpg"), b"12345").unwrap();
    let (_, len) = r
        .open(d.join("allowed/snap.jpg").to_str().unwrap())
        .unwrap();
    assert_eq!(len, 5);
    // The camera plugin's paths carry `..` (core/php/../../plugins/...).
    let dotted = d.join("allowed/x/../snap.jpg");
    fs::create_dir_all(d.join("allowed/x")).unwrap();
    assert!(r.open(dotted.to_str().unwrap()).is_ok());
}

#[test]
fn system_trees_are_refused_whatever_the_allow_list() {
    let d = tmp("proc");
    let r = FileRules::new(&[PathBuf::from("/")], &[], &d.join("state.json"), 1 << 20);
    for p in [
        "/proc/self/environ",
        "/proc/self/cmdline",
        "/sys/kernel/hostname",
        "/dev/null",
    ] {
        assert_eq!(refusal(&r, Path::new(p)), Refusal::SystemTree, "{p}");
    }
}

#[test]
fn outside_the_allow_list_is_refused_even_when_missing() {
    let d = tmp("outside");
    let r = rules(&d);
    fs::write(d.join("other.jpg"), b"x").unwrap();
    for p in [d.join("other.jpg"), d.join("nothing-here.jpg")] {
        let e = refusal(&r, &p);
        assert_eq!(e, Refusal::Outside(d.join("allowed").display().to_string()));
    }
    let text = FileError {
        path: "/etc/passwd".into(),
        refusal: refusal(&r, Path::new("/etc/passwd")),
    }
    .to_string();
    let expected = format!(
        "file \"/etc/passwd\": outside the allowed directories (--files-dir): {}",
        d.join("allowed").display()
    );
    assert_eq!(text, expected);
}

#[test]
fn own_files_are_refused_even_inside_an_allowed_directory() {
    let d = tmp("own");
    let r = FileRules::new(
        &[d.to_path_buf()],
        &[d.join("password"), d.join("daemon.pid")],
        &d.join("state.json"),
        1000,
    );
    fs::write(d.join("password"), "secret").unwrap();
    fs::write(d.join("state.json"), "{}").unwrap();
    fs::write(d.join("state.json.tmp"), "{}").unwrap();
    fs::write(d.join("daemon.pid"), "1").unwrap();
    let more = [
        "state.json.journal",
        "state.json.journal.new",
        "daemon.pid.tmp",
    ];
    for name in more {
        fs::write(d.join(name), "x").unwrap();
    }
    let own = ["password", "state.json", "state.json.tmp", "daemon.pid"];
    for name in own.into_iter().chain(more) {
        assert_eq!(refusal(&r, &d.join(name)), Refusal::OwnFile, "{name}");
    }
}

#[test]
fn links_to_own_or_outside_files_are_refused() {
    let d = tmp("links");
    let r = rules(&d);
    let a = d.join("allowed");
    symlink(d.join("password"), a.join("pw.jpg")).unwrap();
    symlink("/proc/self/environ", a.join("env.jpg")).unwrap();
    symlink("/etc/hostname", a.join("host.jpg")).unwrap();
    fs::hard_link(d.join("state.json"), a.join("hard.jpg")).unwrap();
    assert_eq!(refusal(&r, &a.join("pw.jpg")), Refusal::OwnFile);
    assert_eq!(refusal(&r, &a.join("env.jpg")), Refusal::SystemTree);
    assert!(matches!(
        refusal(&r, &a.join("host.jpg")),
        Refusal::Outside(_)
    ));
    assert_eq!(refusal(&r, &a.join("hard.jpg")), Refusal::OwnFile);
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let d = tmp("fifo");
    let r = rules(&d);
    let fifo = d.join("allowed/pipe.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_eq!(refusal(&r, &fifo), Refusal::NotRegular("a FIFO"));
    assert_eq!(
        refusal(&r, &d.join("allowed")),
        Refusal::NotRegular("a directory")
    );
}

/// The type is known from the path before any open (opening a device can
/// act on it): a socket, which open(2) fails on (ENXIO), is refused by its type.
#[test]
fn a_special_file_is_refused_by_its_type_before_it_is_opened() {
    let d = tmp("socket");
    let r = rules(&d);
    let path = d.join("allowed/sock.jpg");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    assert_eq!(refusal(&r, &path), Refusal::NotRegular("a socket"));
}

#[test]
fn no_allow_list_means_the_jeedom_directories() {
    let r = FileRules::new(&[], &[], Path::new("/nonexistent/state.json"), 1);
    let e = refusal(&r, Path::new("/etc/hostname"));
    assert_eq!(e, Refusal::Outside(DEFAULT_DIRS.join(", ")));
}

#[test]
fn a_path_with_control_characters_is_escaped() {
    let e = FileError {
        path: "/a\nERROR forged".into(),
        refusal: Refusal::SystemTree,
    };
    assert!(
        e.to_string().starts_with("file \"/a\\nERROR forged\": "),
        "{e}"
    );
}

#[test]
fn sizes_are_shown_in_mib() {
    let e = FileError {
        path: "/a".into(),
        refusal: Refusal::TooLarge {
            size: 300_000_000,
            limit: 50 * 1024 * 1024,
        },
    };
    assert_eq!(
        e.to_string(),
        "file \"/a\": 286.1 MiB (300000000 bytes) is over the limit of 50 MiB (--max-file-size)"
    );
}

#[test]
fn a_directory_swapped_for_a_symlink_is_not_followed() {
    let d = tmp("swap");
    let r = rules(&d);
    fs::create_dir_all(d.join("real")).unwrap();
    fs::write(d.join("real/x.jpg"), b"x").unwrap();
    symlink(d.join("real"), d.join("allowed/cams")).unwrap();
    // What the checks would have resolved, had `cams` been a directory then.
    let raced = d.join("allowed/cams/x.jpg");
    let e = open_without_symlinks(&raced).unwrap_err();
    // O_PATH | O_NOFOLLOW takes the link itself, which is no directory.
    let refused = [Some(libc::ELOOP), Some(libc::ENOTDIR)];
    assert!(refused.contains(&e.raw_os_error()), "{e}");
    assert!(matches!(refusal(&r, &raced), Refusal::Outside(_)));
    let direct = open_without_symlinks(&d.join("real/x.jpg")).unwrap();
    assert!(direct.metadata().unwrap().is_file());
}
