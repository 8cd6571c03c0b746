//! `etcd-bench-grpc`: the workloads of `shared/bench-spec.md` with the crates.io gRPC client
//! `etcd-client`, for comparison with our gateway client. The harness is `etcd-bench`'s own
//! source, included below, so the workloads are the same code.
#![forbid(unsafe_code)]

#[path = "../../src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod harness;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, LeaseClient,
    LeaseKeepAliveStream, LeaseKeeper, Txn, TxnOp, WatchOptions, WatchStream,
};
use harness::{key, main_with, run_all, value, BenchClient, Res, Watcher, PREFIX, USAGE};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// etcd-client as an application sharing one client between tasks uses it: its methods take
/// `&mut self`, so each call works on a clone of the (cheap to clone) service client.
#[derive(Clone)]
struct Grpc {
    client: Client,
    endpoint: String,
    kv: KvClient,
    lease: LeaseClient,
    value: Bytes,
    /// The keep-alive stream of the lease granted last (gRPC keeps one open per lease).
    keeper: Arc<tokio::sync::Mutex<Option<(i64, LeaseKeeper, LeaseKeepAliveStream)>>>,
}

struct GrpcWatch(WatchStream);

/// lease-many's leases: one keep-alive stream and task per lease, as etcd-client's users
/// keep a lease alive (it has no keeper task of its own). Dropping this stops the tasks.
struct GrpcLeases {
    /// (lease ID, set when its task found it gone or its stream failed, task).
    leases: Vec<(i64, Arc<AtomicBool>, tokio::task::JoinHandle<()>)>,
}

impl Drop for GrpcLeases {
    fn drop(&mut self) {
        for (_, _, task) in &self.leases {
            task.abort();
        }
    }
}

/// Refreshes a lease every `period` on its keep-alive stream until it is gone.
async fn keep(mut keeper: LeaseKeeper, mut stream: LeaseKeepAliveStream, period: Duration) -> bool {
    loop {
        tokio::time::sleep(period).await;
        if keeper.keep_alive().await.is_err() {
            return false;
        }
        match stream.message().await {
            Ok(Some(answer)) if answer.ttl() > 0 => {}
            _ => return false,
        }
    }
}

impl Watcher for GrpcWatch {
    async fn next_events(&mut self) -> Res<usize> {
        match self.0.message().await? {
            Some(m) => Ok(m.events().len()),
            None => Err("the watch ended".into()),
        }
    }
}

impl Grpc {
    async fn connect(endpoint: &str, value: Bytes) -> Res<Grpc> {
        let client = Client::connect([endpoint], None).await?;
        Ok(Grpc {
            // The default 4 MiB limit refuses range-all's answer (5.8 MB for 20,000 keys).
            kv: client.kv_client().max_decoding_message_size(256 << 20),
            lease: client.lease_client(),
            client,
            endpoint: endpoint.to_string(),
            value,
            keeper: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Opens a watch and returns once etcd confirmed it.
    async fn open_watch(&self, key: String, options: Option<WatchOptions>) -> Res<GrpcWatch> {
        let mut stream = self.client.watch_client().watch(key, options).await?;
        loop {
            match stream.message().await? {
                Some(m) if m.created() => return Ok(GrpcWatch(stream)),
                Some(_) => {}
                None => return Err("the watch ended before it was created".into()),
            }
        }
    }
}

impl BenchClient for Grpc {
    type Watcher = GrpcWatch;
    type Leases = GrpcLeases;
    type Cache = harness::NoCache;

    async fn cache(&self) -> Res<Option<harness::NoCache>> {
        Ok(None)
    }

    async fn another(&self) -> Res<Grpc> {
        Grpc::connect(&self.endpoint, self.value.clone()).await
    }

    async fn put(&self, i: usize) -> Res<()> {
        self.kv
            .clone()
            .put(key(i), self.value.to_vec(), None)
            .await?;
        Ok(())
    }

    async fn get(&self, i: usize) -> Res<bool> {
        Ok(!self.kv.clone().get(key(i), None).await?.kvs().is_empty())
    }

    async fn range_all(&self) -> Res<Option<usize>> {
        let answer = self
            .kv
            .clone()
            .get(PREFIX, Some(GetOptions::new().with_prefix()))
            .await?;
        Ok(Some(answer.kvs().len()))
    }

    async fn delete_all(&self) -> Res<()> {
        self.kv
            .clone()
            .delete(PREFIX, Some(DeleteOptions::new().with_prefix()))
            .await?;
        Ok(())
    }

    async fn mod_revision(&self, i: usize) -> Res<i64> {
        let answer = self.kv.clone().get(key(i), None).await?;
        Ok(answer.kvs().first().ok_or("no such key")?.mod_revision())
    }

    async fn cas(&self, i: usize, expected: i64) -> Res<Option<i64>> {
        let k = key(i);
        let txn = Txn::new()
            .when([Compare::mod_revision(k.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::put(k, self.value.to_vec(), None)]);
        let answer = self.kv.clone().txn(txn).await?;
        Ok(answer
            .succeeded()
            .then(|| answer.header().map(|h| h.revision()))
            .flatten())
    }

    async fn watch_all(&self) -> Res<GrpcWatch> {
        // Like ours, return once etcd confirmed the watch.
        self.open_watch(PREFIX.to_string(), Some(WatchOptions::new().with_prefix()))
            .await
    }

    /// One `watch` call per key, as an application watching keys one by one writes it:
    /// each is a gRPC stream of its own, all on the client's one HTTP/2 connection.
    async fn watch_key(&self, i: usize) -> Res<GrpcWatch> {
        self.open_watch(key(i), None).await
    }

    async fn keep_leases(&self, n: usize, ttl: i64) -> Res<GrpcLeases> {
        let period = Duration::from_secs(ttl.max(1) as u64) / 3;
        let mut leases = GrpcLeases {
            leases: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let mut lease = self.lease.clone();
            let id = lease.grant(ttl, None).await?.id();
            let (keeper, stream) = lease.keep_alive(id).await?;
            let lost = Arc::new(AtomicBool::new(false));
            let flag = lost.clone();
            let task = tokio::spawn(async move {
                if !keep(keeper, stream, period).await {
                    flag.store(true, Ordering::Relaxed);
                }
            });
            leases.leases.push((id, lost, task));
        }
        Ok(leases)
    }

    async fn end_leases(&self, leases: GrpcLeases) -> Res<usize> {
        let mut lost = 0;
        for (id, flag, task) in &leases.leases {
            task.abort();
            let ttl = self.lease.clone().time_to_live(*id, None).await?.ttl();
            if ttl <= 0 || flag.load(Ordering::Relaxed) {
                lost += 1;
            }
        }
        for (id, _, _) in &leases.leases {
            self.lease.clone().revoke(*id).await?;
        }
        Ok(lost)
    }

    async fn lease_grant(&self, ttl: i64) -> Res<i64> {
        let mut lease = self.lease.clone();
        let id = lease.grant(ttl, None).await?.id();
        let (keeper, stream) = lease.keep_alive(id).await?;
        *self.keeper.lock().await = Some((id, keeper, stream));
        Ok(id)
    }

    async fn lease_keep_alive(&self, id: i64) -> Res<()> {
        let mut guard = self.keeper.lock().await;
        let Some((kept, keeper, stream)) = guard.as_mut() else {
            return Err("no lease granted".into());
        };
        if *kept != id {
            return Err("keep-alive of a lease this client did not grant last".into());
        }
        keeper.keep_alive().await?;
        match stream.message().await? {
            Some(answer) if answer.ttl() > 0 => Ok(()),
            Some(_) => Err("the lease was not found".into()),
            None => Err("the keep-alive stream ended".into()),
        }
    }
}

fn main() -> ExitCode {
    main_with("etcd-client", |name, opts| async move {
        if name != "etcd-client" {
            return Err(
                format!("this binary runs `etcd-client` only, not `{name}`\n\n{USAGE}").into(),
            );
        }
        let grpc = Grpc::connect(&opts.endpoint, value(opts.value_size)).await?;
        run_all(grpc, &name, &opts).await
    })
}
