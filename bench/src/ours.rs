//! Our client, etcd-kv, under test.

use bytes::Bytes;
use etcd_bench::{key, value, BenchCache, BenchClient, Options, Res, Watcher, PREFIX};
use etcd_kv::{
    Cache, CacheSubscription, CacheUpdate, Client, Compare, Error, LeaseKeeper, Protocol, TxnOp,
    WatchStream,
};
use futures_util::StreamExt;

/// etcd-kv's `Client`, as an application would use it, over the gateway (`ours`) or
/// native gRPC (`ours-grpc`).
#[derive(Clone)]
pub struct Ours {
    client: Client,
    endpoint: String,
    protocol: Protocol,
    value: Bytes,
}

impl Ours {
    pub async fn connect(opts: &Options, protocol: Protocol) -> Res<Ours> {
        Ok(Ours {
            client: client(&opts.endpoint, protocol).await?,
            endpoint: opts.endpoint.clone(),
            protocol,
            value: value(opts.value_size),
        })
    }
}

async fn client(endpoint: &str, protocol: Protocol) -> Result<Client, Error> {
    Client::builder()
        .endpoint(endpoint)
        .protocol(protocol)
        .connect()
        .await
}

/// A watch.
pub struct OursWatch(WatchStream);

impl Watcher for OursWatch {
    async fn next_events(&mut self) -> Res<usize> {
        match self.0.next().await {
            Some(response) => Ok(response?.events().len()),
            None => Err("the watch ended".into()),
        }
    }
}

/// A cache of the prefix, with the keys at hand (as an application has them).
pub struct OursCache(Cache, Vec<Bytes>);

/// A cache's updates.
pub struct OursUpdates(CacheSubscription);

impl Watcher for OursUpdates {
    async fn next_events(&mut self) -> Res<usize> {
        match self.0.next().await {
            Some(Ok(CacheUpdate::Revision(r))) => Ok(r.events().len()),
            Some(Ok(_)) => Ok(0),
            Some(Err(e)) => Err(e.into()),
            None => Err("the cache's updates ended".into()),
        }
    }
}

impl BenchCache for OursCache {
    type Updates = OursUpdates;

    fn get(&self, i: usize) -> bool {
        match self.1.get(i) {
            Some(k) => self.0.get(k).is_ok_and(|kv| kv.is_some()),
            None => self.0.get(key(i)).is_ok_and(|kv| kv.is_some()),
        }
    }

    async fn consistent_get(&self, i: usize) -> Res<bool> {
        Ok(self.0.consistent_get(key(i)).await?.is_some())
    }

    fn updates(&self) -> Res<OursUpdates> {
        Ok(OursUpdates(self.0.subscribe()?))
    }

    fn size_bytes(&self) -> usize {
        self.0.size_bytes()
    }
}

impl BenchClient for Ours {
    type Watcher = OursWatch;
    type Leases = Vec<LeaseKeeper>;
    type Cache = OursCache;

    async fn cache(&self) -> Res<Option<OursCache>> {
        let keys = (0..20_000).map(|i| Bytes::from(key(i))).collect();
        Ok(Some(OursCache(self.client.cache(PREFIX).await?, keys)))
    }

    fn stream_reconnects(&self) -> Option<usize> {
        let stats = self.client.stream_stats();
        Some((stats.watch_reconnects + stats.keep_alive_reconnects) as usize)
    }

    async fn another(&self) -> Res<Ours> {
        Ok(Ours {
            client: client(&self.endpoint, self.protocol).await?,
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            value: self.value.clone(),
        })
    }

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

    async fn watch_key(&self, i: usize) -> Res<OursWatch> {
        Ok(OursWatch(self.client.watch(key(i)).await?))
    }

    async fn keep_leases(&self, n: usize, ttl: i64) -> Res<Vec<LeaseKeeper>> {
        let mut keepers = Vec::with_capacity(n);
        for _ in 0..n {
            keepers.push(self.client.lease_keeper(ttl).await?);
        }
        Ok(keepers)
    }

    async fn end_leases(&self, keepers: Vec<LeaseKeeper>) -> Res<usize> {
        let mut lost = 0;
        for keeper in &keepers {
            let gone = match self.client.lease_time_to_live(keeper.id()).await {
                Ok(_) => false,
                Err(Error::LeaseNotFound { .. }) => true,
                Err(e) => return Err(e.into()),
            };
            if gone || keeper.lost_reason().is_some() {
                lost += 1;
            }
        }
        for keeper in keepers {
            keeper.revoke().await?;
        }
        Ok(lost)
    }
}
