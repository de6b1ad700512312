//! The `ObjectStore` contract, run against `LocalObjectStore` (a temporary directory) and `S3ObjectStore` (the
//! S3-compatible server named by `TEST_S3_ENDPOINT`; `scripts/test.sh` starts one). Without that variable the S3
//! tests fail: they never pass silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use pluto_duck_application::ports::{
    ByteStream, ListObjects, ObjectRead, ObjectStore, ObjectStoreError, PutObject, DEFAULT_CONTENT_TYPE,
};
use pluto_duck_domain::{BucketName, ByteRange, ObjectKey};
use pluto_duck_object_store::{LocalObjectStore, S3Config, S3ObjectStore};
use secrecy::SecretString;

const MIB: usize = 1024 * 1024;

/// A store under test and what keeps it alive.
struct Subject {
    store: Arc<dyn ObjectStore>,
    _dir: Option<tempfile::TempDir>,
    root: Option<std::path::PathBuf>,
}

fn local() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    Subject {
        store: Arc::new(LocalObjectStore::open(&root).unwrap()),
        _dir: Some(dir),
        root: Some(root),
    }
}

fn s3() -> Subject {
    let endpoint = std::env::var("TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "TEST_S3_ENDPOINT is not set: the S3 contract tests need an S3-compatible server \
             (run them through scripts/test.sh, or `source scripts/services.sh` first)"
        )
    });
    let endpoint = if endpoint.contains("://") {
        endpoint
    } else {
        format!("http://{endpoint}")
    };
    let key = std::env::var("TEST_S3_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("TEST_S3_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    Subject {
        store: Arc::new(S3ObjectStore::new(S3Config::local(endpoint, key, SecretString::from(secret))).unwrap()),
        _dir: None,
        root: None,
    }
}

/// A bucket name no other test (or earlier run against the same server) uses.
fn fresh_bucket(tag: &str) -> BucketName {
    BucketName::parse(format!("t-{tag}-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

fn key(k: &str) -> ObjectKey {
    ObjectKey::parse(k).unwrap()
}

/// Deterministic, not repetitive: a wrong offset shows.
fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn body(data: Bytes, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, ObjectStoreError>> = (0..data.len())
        .step_by(chunk.max(1))
        .map(|i| Ok(data.slice(i..(i + chunk).min(data.len()))))
        .collect();
    Box::pin(stream::iter(chunks))
}

/// `data` until `fail_at` bytes, then an error, as a client that goes away mid-upload.
fn failing_body(data: Bytes, chunk: usize, fail_at: usize) -> ByteStream {
    let ok = body(data.slice(..fail_at), chunk);
    let err = stream::once(async { Err(ObjectStoreError::Interrupted("client went away".into())) });
    Box::pin(ok.chain(err))
}

async fn put(store: &dyn ObjectStore, b: &BucketName, k: &str, bytes: Bytes) {
    store
        .put_object(b, &key(k), PutObject::default(), body(bytes, 64 * 1024))
        .await
        .unwrap_or_else(|e| panic!("put {k}: {e}"));
}

async fn read_all(read: ObjectRead) -> Bytes {
    let parts: Vec<Bytes> = read.body.try_collect().await.unwrap();
    parts.concat().into()
}

async fn get(store: &dyn ObjectStore, b: &BucketName, k: &str) -> Bytes {
    read_all(store.get_object(b, &key(k), None).await.unwrap()).await
}

async fn new_bucket(store: &dyn ObjectStore, tag: &str) -> BucketName {
    let b = fresh_bucket(tag);
    store.create_bucket(&b).await.unwrap();
    b
}

// --- the contract --------------------------------------------------------------------------------------------

async fn bucket_name_rules(s: Subject) {
    let store = s.store.as_ref();
    // Names at the edges of the rules are accepted by the store too: the rules are not stricter than S3's.
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    for name in [
        format!("a.b-c.{}", &suffix[..8]),
        format!("{}{}", "x".repeat(63 - suffix.len()), suffix),
        format!("9{}", &suffix[..2]),
    ] {
        let b = BucketName::parse(name.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        store
            .create_bucket(&b)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        store.delete_bucket(&b, false).await.unwrap();
    }
    for bad in [
        "ab",
        "Upper",
        "under_score",
        "-x-",
        "a..b",
        "192.168.0.1",
        "xn--abc",
        "abc-s3alias",
    ] {
        let err = BucketName::parse(bad).unwrap_err();
        assert_eq!(
            ObjectStoreError::from(err).kind(),
            pluto_duck_application::ErrorKind::Invalid,
            "{bad}"
        );
    }
}

async fn bucket_lifecycle(s: Subject) {
    let store = s.store.as_ref();
    let b = fresh_bucket("life");
    assert!(!store.list_buckets().await.unwrap().iter().any(|i| i.name == b));
    store.create_bucket(&b).await.unwrap();
    let listed = store.list_buckets().await.unwrap();
    assert!(listed.iter().any(|i| i.name == b), "created bucket listed");
    let names: Vec<_> = listed.iter().map(|i| i.name.as_str().to_owned()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "buckets are sorted");
    assert!(matches!(
        store.create_bucket(&b).await.unwrap_err(),
        ObjectStoreError::BucketExists(_)
    ));

    put(store, &b, "dir/file.txt", Bytes::from_static(b"x")).await;
    let err = store.delete_bucket(&b, false).await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::BucketNotEmpty(_)), "{err}");
    assert_eq!(err.kind(), pluto_duck_application::ErrorKind::Conflict);
    // Emptied by deletes, it may go.
    store.delete_object(&b, &key("dir/file.txt")).await.unwrap();
    store.delete_bucket(&b, false).await.unwrap();
    assert!(!store.list_buckets().await.unwrap().iter().any(|i| i.name == b));
    assert!(matches!(
        store.delete_bucket(&b, false).await.unwrap_err(),
        ObjectStoreError::BucketNotFound(_)
    ));

    // Forced, with objects in it.
    store.create_bucket(&b).await.unwrap();
    for k in ["a", "b/c", "b/d/e"] {
        put(store, &b, k, Bytes::from_static(b"payload")).await;
    }
    store.delete_bucket(&b, true).await.unwrap();
    assert!(!store.list_buckets().await.unwrap().iter().any(|i| i.name == b));

    let missing = fresh_bucket("missing");
    for err in [
        store.list_objects(&missing, ListObjects::default()).await.unwrap_err(),
        store.head_object(&missing, &key("a")).await.unwrap_err(),
        store
            .get_object(&missing, &key("a"), None)
            .await
            .map(|_| ())
            .unwrap_err(),
        store.delete_object(&missing, &key("a")).await.unwrap_err(),
        store
            .put_object(
                &missing,
                &key("a"),
                PutObject::default(),
                body(Bytes::from_static(b"x"), 1),
            )
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, ObjectStoreError::BucketNotFound(_)), "{err}");
    }
}

async fn streamed_round_trip(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "trip").await;
    // Past one S3 part (8 MiB): the multipart path.
    let big = data(12 * MIB + 12345, 1);
    let info = store
        .put_object(
            &b,
            &key("big/blob.bin"),
            PutObject::default(),
            body(big.clone(), 64 * 1024),
        )
        .await
        .unwrap();
    assert_eq!(info.size, big.len() as u64);
    assert!(info.etag.as_deref().is_some_and(|e| !e.is_empty()));
    let read = store.get_object(&b, &key("big/blob.bin"), None).await.unwrap();
    assert_eq!(read.range, 0..big.len() as u64);
    assert_eq!(read.info.size, big.len() as u64);
    assert_eq!(read_all(read).await, big, "the body comes back byte for byte");

    // A small one, a one-byte-chunk one and an empty one.
    let small = data(1000, 2);
    put(store, &b, "small", small.clone()).await;
    assert_eq!(get(store, &b, "small").await, small);
    store
        .put_object(&b, &key("bytewise"), PutObject::default(), body(small.clone(), 1))
        .await
        .unwrap();
    assert_eq!(get(store, &b, "bytewise").await, small);
    put(store, &b, "empty", Bytes::new()).await;
    let read = store.get_object(&b, &key("empty"), None).await.unwrap();
    assert_eq!((read.range.clone(), read.info.size), (0..0, 0));
    assert!(read_all(read).await.is_empty());

    // Replacing keeps one object with the new body; keys may hold any printable text.
    let odd = "odd keys/with space#1+ü&=?.csv";
    put(store, &b, odd, Bytes::from_static(b"first")).await;
    put(store, &b, odd, Bytes::from_static(b"second")).await;
    assert_eq!(get(store, &b, odd).await, Bytes::from_static(b"second"));
    let head = store.head_object(&b, &key(odd)).await.unwrap();
    assert_eq!(head.size, 6);
    store.delete_bucket(&b, true).await.unwrap();
}

async fn ranges(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "range").await;
    let bytes = data(10_000, 3);
    put(store, &b, "r.bin", bytes.clone()).await;
    let cases = [
        (
            ByteRange::From {
                start: 0,
                end: Some(99),
            },
            0..100,
        ),
        (
            ByteRange::From {
                start: 5000,
                end: Some(5009),
            },
            5000..5010,
        ),
        (ByteRange::From { start: 9990, end: None }, 9990..10_000),
        (
            ByteRange::From {
                start: 9990,
                end: Some(20_000),
            },
            9990..10_000,
        ),
        (ByteRange::Suffix(10), 9990..10_000),
        (ByteRange::Suffix(50_000), 0..10_000),
    ];
    for (range, expected) in cases {
        let read = store.get_object(&b, &key("r.bin"), Some(range)).await.unwrap();
        assert_eq!(read.range, expected, "{range:?}");
        assert_eq!(read.info.size, 10_000, "total size with a range");
        let got = read_all(read).await;
        assert_eq!(
            got,
            bytes.slice(expected.start as usize..expected.end as usize),
            "{range:?}"
        );
    }
    for range in [
        ByteRange::From {
            start: 10_000,
            end: None,
        },
        ByteRange::From {
            start: 20_000,
            end: Some(20_010),
        },
        ByteRange::From {
            start: 10,
            end: Some(5),
        },
        ByteRange::Suffix(0),
    ] {
        let err = store.get_object(&b, &key("r.bin"), Some(range)).await.unwrap_err();
        assert!(
            matches!(err, ObjectStoreError::RangeNotSatisfiable { size: 10_000 }),
            "{range:?}: {err}"
        );
        assert_eq!(err.kind(), pluto_duck_application::ErrorKind::Invalid);
    }
    put(store, &b, "empty", Bytes::new()).await;
    let err = store
        .get_object(&b, &key("empty"), Some(ByteRange::From { start: 0, end: Some(0) }))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ObjectStoreError::RangeNotSatisfiable { size: 0 }),
        "{err}"
    );
    let err = store
        .get_object(&b, &key("absent"), Some(ByteRange::Suffix(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectStoreError::ObjectNotFound { .. }), "{err}");
    store.delete_bucket(&b, true).await.unwrap();
}

async fn content_type_and_metadata(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "meta").await;
    let metadata: BTreeMap<String, String> = [
        ("owner".to_owned(), "ana".to_owned()),
        ("source-system".to_owned(), "crm v2".to_owned()),
        ("row_count".to_owned(), "42".to_owned()),
    ]
    .into();
    let options = PutObject {
        content_type: Some("text/csv; charset=utf-8".into()),
        metadata: metadata.clone(),
        max_size: None,
    };
    let stored = store
        .put_object(&b, &key("t.csv"), options, body(Bytes::from_static(b"a,b\n1,2\n"), 3))
        .await
        .unwrap();
    assert_eq!(stored.content_type, "text/csv; charset=utf-8");
    assert_eq!(stored.metadata, metadata);
    let head = store.head_object(&b, &key("t.csv")).await.unwrap();
    assert_eq!(
        (head.content_type.as_str(), &head.metadata),
        ("text/csv; charset=utf-8", &metadata)
    );
    assert_eq!(head.etag, stored.etag);
    let read = store.get_object(&b, &key("t.csv"), None).await.unwrap();
    assert_eq!(read.info.metadata, metadata, "get carries the metadata too");

    // Multipart uploads keep them as well.
    let options = PutObject {
        content_type: Some("application/vnd.apache.parquet".into()),
        metadata: metadata.clone(),
        max_size: None,
    };
    store
        .put_object(&b, &key("big.parquet"), options, body(data(9 * MIB, 4), MIB))
        .await
        .unwrap();
    let head = store.head_object(&b, &key("big.parquet")).await.unwrap();
    assert_eq!(head.content_type, "application/vnd.apache.parquet");
    assert_eq!(head.metadata, metadata);

    // No content type: the default; replacing the object replaces its metadata.
    put(store, &b, "t.csv", Bytes::from_static(b"x")).await;
    let head = store.head_object(&b, &key("t.csv")).await.unwrap();
    assert_eq!(head.content_type, DEFAULT_CONTENT_TYPE);
    assert!(head.metadata.is_empty(), "{:?}", head.metadata);

    // Copies keep both, within a bucket and across buckets.
    let other = new_bucket(store, "meta2").await;
    let copied = store
        .copy_object(&b, &key("big.parquet"), &other, &key("copy/of.parquet"))
        .await
        .unwrap();
    assert_eq!(copied.content_type, "application/vnd.apache.parquet");
    assert_eq!(copied.metadata, metadata);
    assert_eq!(
        get(store, &other, "copy/of.parquet").await,
        get(store, &b, "big.parquet").await
    );
    store
        .copy_object(&b, &key("big.parquet"), &b, &key("same-bucket.parquet"))
        .await
        .unwrap();
    assert_eq!(
        store
            .head_object(&b, &key("same-bucket.parquet"))
            .await
            .unwrap()
            .metadata,
        metadata
    );
    let err = store
        .copy_object(&b, &key("absent"), &other, &key("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectStoreError::ObjectNotFound { .. }), "{err}");

    // Refused before anything is stored.
    for bad in [
        PutObject {
            content_type: Some("not a type".into()),
            ..Default::default()
        },
        PutObject {
            metadata: [("Bad Key".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        },
    ] {
        let err = store
            .put_object(&b, &key("refused"), bad, body(Bytes::from_static(b"x"), 1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), pluto_duck_application::ErrorKind::Invalid, "{err}");
    }
    assert!(store.head_object(&b, &key("refused")).await.is_err());
    store.delete_bucket(&b, true).await.unwrap();
    store.delete_bucket(&other, true).await.unwrap();
}

async fn listing(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "list").await;
    let keys = [
        "a.txt",
        "data/2024/01.csv",
        "data/2024/02.csv",
        "data/2025/01.csv",
        "data/readme.md",
        "logs/x.log",
        "z",
    ];
    for k in keys {
        put(store, &b, k, Bytes::from(k.to_owned())).await;
    }
    let all = store.list_objects(&b, ListObjects::default()).await.unwrap();
    let listed: Vec<&str> = all.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, keys, "everything, in key order");
    assert!(all.common_prefixes.is_empty() && all.next_page_token.is_none());
    assert_eq!(all.objects[0].size, 5);

    let top = store
        .list_objects(
            &b,
            ListObjects {
                delimiter: Some("/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<&str> = top.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["a.txt", "z"]);
    assert_eq!(top.common_prefixes, ["data/", "logs/"]);

    let data_dir = store
        .list_objects(
            &b,
            ListObjects {
                prefix: Some("data/".into()),
                delimiter: Some("/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<&str> = data_dir.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["data/readme.md"]);
    assert_eq!(data_dir.common_prefixes, ["data/2024/", "data/2025/"]);

    let partial = store
        .list_objects(
            &b,
            ListObjects {
                prefix: Some("data/202".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(partial.objects.len(), 3, "a prefix need not end at a '/'");

    // Pages of two, each resuming where the last ended, cover everything once.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_objects(
                &b,
                ListObjects {
                    page_token: token.clone(),
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.objects.len() <= 2);
        seen.extend(page.objects.iter().map(|o| o.key.as_str().to_owned()));
        pages += 1;
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(seen, keys);
    assert_eq!(pages, 4);

    // Pages with a delimiter count prefixes too.
    let mut entries = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list_objects(
                &b,
                ListObjects {
                    delimiter: Some("/".into()),
                    page_token: token.clone(),
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.objects.len() + page.common_prefixes.len(), 1);
        entries.extend(page.objects.iter().map(|o| o.key.as_str().to_owned()));
        entries.extend(page.common_prefixes.clone());
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    entries.sort();
    assert_eq!(entries, ["a.txt", "data/", "logs/", "z"]);

    let err = store
        .list_objects(
            &b,
            ListObjects {
                limit: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), pluto_duck_application::ErrorKind::Invalid);
    store.delete_bucket(&b, true).await.unwrap();
}

async fn deleting(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "del").await;
    put(store, &b, "dir/a", Bytes::from_static(b"a")).await;
    put(store, &b, "dir/b", Bytes::from_static(b"b")).await;
    store.delete_object(&b, &key("dir/a")).await.unwrap();
    let err = store.head_object(&b, &key("dir/a")).await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::ObjectNotFound { .. }), "{err}");
    assert_eq!(err.kind(), pluto_duck_application::ErrorKind::NotFound);
    assert!(store.get_object(&b, &key("dir/a"), None).await.is_err());
    // Deleting what is not there succeeds, as on S3.
    store.delete_object(&b, &key("dir/a")).await.unwrap();
    store.delete_object(&b, &key("never/was")).await.unwrap();
    let left = store.list_objects(&b, ListObjects::default()).await.unwrap();
    assert_eq!(left.objects.len(), 1);
    assert_eq!(get(store, &b, "dir/b").await, Bytes::from_static(b"b"));
    // A key may come back where only a folder of deleted objects remains.
    store.delete_object(&b, &key("dir/b")).await.unwrap();
    put(store, &b, "dir", Bytes::from_static(b"now a file")).await;
    assert_eq!(get(store, &b, "dir").await, Bytes::from_static(b"now a file"));
    store.delete_bucket(&b, true).await.unwrap();
}

async fn failed_uploads_leave_nothing(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "fail").await;
    // Small (one request) and large (multipart) uploads broken midway.
    for (k, len, fail_at) in [("small", 100_000, 50_000), ("large", 20 * MIB, 17 * MIB)] {
        let err = store
            .put_object(
                &b,
                &key(k),
                PutObject::default(),
                failing_body(data(len, 5), 256 * 1024, fail_at),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectStoreError::Interrupted(_)), "{k}: {err}");
        let err = store.head_object(&b, &key(k)).await.unwrap_err();
        assert!(matches!(err, ObjectStoreError::ObjectNotFound { .. }), "{k}: {err}");
    }
    // A failed replacement keeps the old object whole.
    let old = data(3000, 6);
    put(store, &b, "kept", old.clone()).await;
    let _ = store
        .put_object(
            &b,
            &key("kept"),
            PutObject::default(),
            failing_body(data(10 * MIB, 7), MIB, 9 * MIB),
        )
        .await
        .unwrap_err();
    assert_eq!(get(store, &b, "kept").await, old);
    let listed = store.list_objects(&b, ListObjects::default()).await.unwrap();
    let listed: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["kept"]);
    store.delete_bucket(&b, true).await.unwrap();
}

async fn size_limit(s: Subject) {
    let store = s.store.as_ref();
    let b = new_bucket(store, "limit").await;
    let limited = |limit| PutObject {
        max_size: Some(limit),
        ..Default::default()
    };
    for (len, limit) in [(1001, 1000), (10 * MIB, 9 * MIB as u64)] {
        let err = store
            .put_object(&b, &key("too-big"), limited(limit), body(data(len, 8), 64 * 1024))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ObjectStoreError::TooLarge { limit: l } if l == limit),
            "{err}"
        );
        assert_eq!(err.problem_slug(), Some("payload-too-large"));
        assert!(store.head_object(&b, &key("too-big")).await.is_err());
    }
    let info = store
        .put_object(&b, &key("exact"), limited(1000), body(data(1000, 9), 300))
        .await
        .unwrap();
    assert_eq!(info.size, 1000);
    store.delete_bucket(&b, true).await.unwrap();
}

async fn unsafe_keys_are_refused() {
    for bad in ["../escape", "a/../../b", "/abs", "a//b", "a/./b", "nul\0byte", "dir/"] {
        let err = ObjectKey::parse(bad).unwrap_err();
        assert_eq!(
            ObjectStoreError::from(err).kind(),
            pluto_duck_application::ErrorKind::Invalid,
            "{bad:?}"
        );
    }
    assert!(ObjectKey::parse("k".repeat(1025)).is_err());
}

async fn concurrent_writers(s: Subject) {
    let store = Arc::clone(&s.store);
    let b = new_bucket(store.as_ref(), "race").await;
    let versions: Vec<(Bytes, BTreeMap<String, String>)> = (0..2u64)
        .map(|i| {
            let md: BTreeMap<String, String> = [("writer".to_owned(), i.to_string())].into();
            (data(9 * MIB + i as usize, 10 + i), md)
        })
        .collect();
    for _round in 0..3 {
        let writers: Vec<_> = versions
            .iter()
            .cloned()
            .map(|(bytes, md)| {
                let store = Arc::clone(&store);
                let b = b.clone();
                tokio::spawn(async move {
                    let options = PutObject {
                        metadata: md,
                        ..Default::default()
                    };
                    store
                        .put_object(&b, &key("contended"), options, body(bytes, 128 * 1024))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let read = store.get_object(&b, &key("contended"), None).await.unwrap();
        let writer: usize = read.info.metadata["writer"].parse().unwrap();
        let got = read_all(read).await;
        assert_eq!(
            got, versions[writer].0,
            "the body is one writer's, whole, and matches its metadata"
        );
    }
    store.delete_bucket(&b, true).await.unwrap();
}

macro_rules! contract {
    ($adapter:ident) => {
        mod $adapter {
            #[tokio::test]
            async fn bucket_name_rules() {
                super::bucket_name_rules(super::$adapter()).await
            }
            #[tokio::test]
            async fn bucket_lifecycle() {
                super::bucket_lifecycle(super::$adapter()).await
            }
            #[tokio::test]
            async fn streamed_round_trip() {
                super::streamed_round_trip(super::$adapter()).await
            }
            #[tokio::test]
            async fn ranges() {
                super::ranges(super::$adapter()).await
            }
            #[tokio::test]
            async fn content_type_and_metadata() {
                super::content_type_and_metadata(super::$adapter()).await
            }
            #[tokio::test]
            async fn listing() {
                super::listing(super::$adapter()).await
            }
            #[tokio::test]
            async fn deleting() {
                super::deleting(super::$adapter()).await
            }
            #[tokio::test]
            async fn failed_uploads_leave_nothing() {
                super::failed_uploads_leave_nothing(super::$adapter()).await
            }
            #[tokio::test]
            async fn size_limit() {
                super::size_limit(super::$adapter()).await
            }
            #[tokio::test]
            async fn unsafe_keys_are_refused() {
                super::unsafe_keys_are_refused().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_writers() {
                super::concurrent_writers(super::$adapter()).await
            }
        }
    };
}

contract!(local);
contract!(s3);

// --- the local store only -------------------------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn local_symlinks_never_lead_out_of_the_root() {
    use std::os::unix::fs::symlink;
    let s = local();
    let store = s.store.as_ref();
    let root = s.root.clone().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"outside the root").unwrap();
    let b = new_bucket(store, "links").await;
    let bucket_dir = root.join(b.as_str());
    symlink(outside.path(), bucket_dir.join("dir-link")).unwrap();
    symlink(outside.path().join("secret.txt"), bucket_dir.join("file-link")).unwrap();
    // A bucket that is itself a symlink to elsewhere.
    let linked = BucketName::parse("linked-bucket").unwrap();
    symlink(outside.path(), root.join(linked.as_str())).unwrap();

    for k in ["dir-link/secret.txt", "file-link"] {
        let err = store.get_object(&b, &key(k), None).await.unwrap_err();
        assert!(matches!(err, ObjectStoreError::ObjectNotFound { .. }), "{k}: {err}");
        assert!(store.head_object(&b, &key(k)).await.is_err());
    }
    let err = store
        .put_object(
            &b,
            &key("dir-link/planted.txt"),
            PutObject::default(),
            body(Bytes::from_static(b"x"), 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectStoreError::Conflict(_)), "{err}");
    assert!(
        !outside.path().join("planted.txt").exists(),
        "nothing written through the link"
    );
    // Replacing the link itself replaces the link, not its target.
    put(store, &b, "file-link", Bytes::from_static(b"mine")).await;
    assert_eq!(
        std::fs::read(outside.path().join("secret.txt")).unwrap(),
        b"outside the root"
    );
    let listed = store.list_objects(&b, ListObjects::default()).await.unwrap();
    let listed: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["file-link"], "links are not listed or followed");

    let err = store.list_objects(&linked, ListObjects::default()).await.unwrap_err();
    assert!(matches!(err, ObjectStoreError::BucketNotFound(_)), "{err}");
    assert!(!store.list_buckets().await.unwrap().iter().any(|i| i.name == linked));

    store.delete_bucket(&b, true).await.unwrap();
    assert!(
        outside.path().join("secret.txt").exists(),
        "a forced delete unlinks links, not their targets"
    );
}

#[tokio::test]
async fn local_objects_are_plain_files_and_staging_is_cleared() {
    let s = local();
    let store = s.store.as_ref();
    let root = s.root.clone().unwrap();
    let b = new_bucket(store, "files").await;
    // Names LocalFileSystem refuses (`#<digits>`) are fine here.
    put(store, &b, "data/part.parquet#1", Bytes::from_static(b"PAR1")).await;
    assert_eq!(
        std::fs::read(root.join(b.as_str()).join("data/part.parquet#1")).unwrap(),
        b"PAR1",
        "the engine can read objects in place"
    );
    let _ = store
        .put_object(
            &b,
            &key("broken"),
            PutObject::default(),
            failing_body(data(4096, 1), 100, 2000),
        )
        .await
        .unwrap_err();
    let staged: Vec<_> = std::fs::read_dir(root.join(".tmp")).unwrap().collect();
    assert!(staged.is_empty(), "a failed upload leaves no staged file: {staged:?}");
    // A second store over the same root sees the same objects.
    let again = LocalObjectStore::open(&root).unwrap();
    assert_eq!(
        read_all(again.get_object(&b, &key("data/part.parquet#1"), None).await.unwrap()).await,
        Bytes::from_static(b"PAR1")
    );
}
