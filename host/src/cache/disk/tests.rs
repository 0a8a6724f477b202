//! The disk cache against a real directory: round trip, every kind of bad file, pruning,
//! permissions.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;

fn key(name: &str) -> CacheKey {
    crate::cache::key::test_key(name)
}

fn open(max_bytes: u64) -> (tempfile::TempDir, DiskCache) {
    let root = tempfile::tempdir().unwrap();
    let cache = DiskCache::open(&root.path().join("components"), max_bytes).unwrap();
    (root, cache)
}

#[test]
fn round_trip() {
    let (_root, cache) = open(1 << 20);
    assert!(matches!(cache.get(&key("a")), Lookup::Absent));
    cache.put(&key("a"), b"payload").unwrap();
    match cache.get(&key("a")) {
        Lookup::Hit(bytes) => assert_eq!(bytes, b"payload"),
        other => panic!("expected a hit, got {other:?}"),
    }
    assert_eq!(cache.stats().unwrap().entries, 1);
}

fn expect_discarded(cache: &DiskCache, key: &CacheKey, reason: &str) {
    match cache.get(key) {
        Lookup::Discarded(why) => assert!(why.contains(reason), "{why}"),
        other => panic!("expected {reason}, got {other:?}"),
    }
    assert!(
        matches!(cache.get(key), Lookup::Absent),
        "a bad file is deleted, not refused again and again"
    );
}

#[test]
fn corrupt_truncated_and_foreign_files_are_discarded() {
    let (_root, cache) = open(1 << 20);
    let payload = vec![7u8; 1000];

    cache.put(&key("corrupt"), &payload).unwrap();
    let path = cache.path(&key("corrupt"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_LEN + 500] ^= 1;
    fs::write(&path, &bytes).unwrap();
    expect_discarded(&cache, &key("corrupt"), "corrupt");

    cache.put(&key("short"), &payload).unwrap();
    let path = cache.path(&key("short"));
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    expect_discarded(&cache, &key("short"), "truncated");
    fs::write(&path, &bytes[..20]).unwrap();
    expect_discarded(&cache, &key("short"), "truncated");

    // A whole, valid file of another key, renamed: refused on the key, not on its hash.
    cache.put(&key("other"), &payload).unwrap();
    fs::rename(cache.path(&key("other")), cache.path(&key("victim"))).unwrap();
    expect_discarded(&cache, &key("victim"), "another key");

    fs::write(cache.path(&key("junk")), [b'#'; 200]).unwrap();
    expect_discarded(&cache, &key("junk"), "magic");
}

#[test]
fn pruning_keeps_the_most_recently_used_within_the_bound() {
    let (_root, cache) = open(2500);
    let payload = vec![1u8; 1000 - HEADER_LEN];
    let old = SystemTime::now() - std::time::Duration::from_secs(3600);
    cache.put(&key("a"), &payload).unwrap();
    cache.put(&key("b"), &payload).unwrap();
    // Make the order explicit: a older than b; then a hit makes a the most recent.
    File::options()
        .append(true)
        .open(cache.path(&key("a")))
        .unwrap()
        .set_modified(old)
        .unwrap();
    File::options()
        .append(true)
        .open(cache.path(&key("b")))
        .unwrap()
        .set_modified(old + std::time::Duration::from_secs(1))
        .unwrap();
    assert!(matches!(cache.get(&key("a")), Lookup::Hit(_)));
    cache.put(&key("c"), &payload).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!(stats.entries, 2, "{stats:?}");
    assert!(stats.bytes <= 2500);
    assert!(
        matches!(cache.get(&key("b")), Lookup::Absent),
        "b was least recently used"
    );
    assert!(matches!(cache.get(&key("a")), Lookup::Hit(_)));
    assert!(matches!(cache.get(&key("c")), Lookup::Hit(_)));
}

#[test]
fn clear_removes_entries_and_temporaries() {
    let (_root, cache) = open(1 << 20);
    cache.put(&key("a"), b"x").unwrap();
    cache.put(&key("b"), b"y").unwrap();
    fs::write(cache.dir().join(".tmp-leftover"), b"half").unwrap();
    fs::write(cache.dir().join("README"), b"not ours").unwrap();
    assert_eq!(cache.clear().unwrap(), 2);
    assert_eq!(cache.stats().unwrap().entries, 0);
    assert!(!cache.dir().join(".tmp-leftover").exists());
    assert!(
        cache.dir().join("README").exists(),
        "files that are not ours stay"
    );
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shared");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let error = DiskCache::open(&dir, 1 << 20).unwrap_err();
    assert!(
        matches!(&error, DiskCacheError::Insecure { why, .. } if why.contains("chmod go-w")),
        "{error}"
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    DiskCache::open(&dir, 1 << 20).unwrap();
}

#[test]
fn concurrent_writers_never_expose_half_a_file() {
    let (_root, cache) = open(1 << 30);
    let cache = &cache;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let payload = &payload;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(move || {
                for _ in 0..20 {
                    cache.put(&key("shared"), payload).unwrap();
                }
            });
        }
        scope.spawn(move || {
            for _ in 0..200 {
                match cache.get(&key("shared")) {
                    Lookup::Hit(bytes) => assert_eq!(&bytes, payload),
                    Lookup::Absent => {}
                    Lookup::Discarded(why) => panic!("a reader saw a bad file: {why}"),
                }
            }
        });
    });
}
