//! Our client, etcd-kv, under test.

use bytes::Bytes;
use etcd_bench::{key, value, BenchClient, Options, Res, Watcher, PREFIX};
use etcd_kv::{Client, Compare, TxnOp, WatchStream};
use futures_util::StreamExt;

/// etcd-kv's `Client`, as an application would use it.
#[derive(Clone)]
pub struct Ours {
    client: Client,
    value: Bytes,
}

impl Ours {
    pub async fn connect(opts: &Options) -> Res<Ours> {
        Ok(Ours {
            client: Client::connect(opts.endpoint.clone()).await?,
            value: value(opts.value_size),
        })
    }
}

/// A prefix watch.
pub struct OursWatch(WatchStream);

impl Watcher for OursWatch {
    async fn next_events(&mut self) -> Res<usize> {
        match self.0.next().await {
            Some(response) => Ok(response?.events().len()),
            None => Err("the watch ended".into()),
        }
    }
}

impl BenchClient for Ours {
    type Watcher = OursWatch;

    async fn put(&self, i: usize) -> Res<()> {
        self.client.put(key(i), self.value.clone()).await?;
        Ok(())
    }

    async fn get(&self, i: usize) -> Res<bool> {
        Ok(self.client.get(key(i)).await?.is_some())
    }

    async fn range_all(&self) -> Res<Option<usize>> {
        Ok(Some(self.client.range(PREFIX).prefix().await?.kvs().len()))
    }

    async fn delete_all(&self) -> Res<()> {
        self.client.delete(PREFIX).prefix().await?;
        Ok(())
    }

    async fn mod_revision(&self, i: usize) -> Res<i64> {
        let kv = self.client.get(key(i)).await?.ok_or("no such key")?;
        Ok(kv.mod_revision())
    }

    async fn cas(&self, i: usize, expected: i64) -> Res<Option<i64>> {
        let k = key(i);
        let answer = self
            .client
            .txn()
            .when([Compare::mod_revision(k.clone()).eq(expected)])
            .and_then([TxnOp::put(k, self.value.clone())])
            .await?;
        Ok(answer.succeeded().then(|| answer.revision()))
    }

    async fn watch_all(&self) -> Res<OursWatch> {
        Ok(OursWatch(self.client.watch(PREFIX).prefix().await?))
    }

    async fn lease_grant(&self, ttl: i64) -> Res<i64> {
        Ok(self.client.lease_grant(ttl).await?.id())
    }

    async fn lease_keep_alive(&self, id: i64) -> Res<()> {
        self.client.lease_keep_alive_once(id).await?;
        Ok(())
    }
}
