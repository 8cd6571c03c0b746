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
use std::sync::Arc;

/// etcd-client as an application sharing one client between tasks uses it: its methods take
/// `&mut self`, so each call works on a clone of the (cheap to clone) service client.
#[derive(Clone)]
struct Grpc {
    client: Client,
    kv: KvClient,
    lease: LeaseClient,
    value: Bytes,
    /// The keep-alive stream of the lease granted last (gRPC keeps one open per lease).
    keeper: Arc<tokio::sync::Mutex<Option<(i64, LeaseKeeper, LeaseKeepAliveStream)>>>,
}

struct GrpcWatch(WatchStream);

impl Watcher for GrpcWatch {
    async fn next_events(&mut self) -> Res<usize> {
        match self.0.message().await? {
            Some(m) => Ok(m.events().len()),
            None => Err("the watch ended".into()),
        }
    }
}

impl BenchClient for Grpc {
    type Watcher = GrpcWatch;

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
        let mut stream = self
            .client
            .watch_client()
            .watch(PREFIX, Some(WatchOptions::new().with_prefix()))
            .await?;
        // Like ours, return once etcd confirmed the watch.
        loop {
            match stream.message().await? {
                Some(m) if m.created() => return Ok(GrpcWatch(stream)),
                Some(_) => {}
                None => return Err("the watch ended before it was created".into()),
            }
        }
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
        let client = Client::connect([opts.endpoint.as_str()], None).await?;
        let grpc = Grpc {
            // The default 4 MiB limit refuses range-all's answer (5.8 MB for 20,000 keys).
            kv: client.kv_client().max_decoding_message_size(256 << 20),
            lease: client.lease_client(),
            client,
            value: value(opts.value_size),
            keeper: Arc::new(tokio::sync::Mutex::new(None)),
        };
        run_all(grpc, &name, &opts).await
    })
}
