//! DNS SRV discovery (feature `srv`) against a DNS server of the test's own on 127.0.0.1,
//! which answers the records etcd's clients ask for with the test etcd's loopback address.

use etcd_kv::SrvDiscovery;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{Name, RData, Record};
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// A UDP DNS server on 127.0.0.1 answering SRV questions from `records` (name → (target,
/// port, priority)), NXDOMAIN otherwise; its address.
async fn dns_server(records: HashMap<String, Vec<(String, u16, u16)>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::new();
            answer
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true);
            answer.add_queries(query.queries().to_vec());
            let found = query
                .queries()
                .first()
                .and_then(|q| records.get(&q.name().to_ascii()).map(|r| (q, r)));
            match found {
                Some((q, targets)) => {
                    for (target, port, priority) in targets {
                        let srv = SRV::new(*priority, 10, *port, Name::from_ascii(target).unwrap());
                        answer.add_answer(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::SRV(srv),
                        ));
                    }
                }
                None => {
                    answer.set_response_code(ResponseCode::NXDomain);
                }
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), from).await;
        }
    });
    address
}

fn port(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client finds its endpoints in `_etcd-client._tcp` records (priority order) and
/// works; `_etcd-client-ssl._tcp` gives https endpoints; a service name picks other
/// records; a domain without records fails `connect` with a typed error naming it.
#[tokio::test]
async fn a_client_finds_its_endpoints_in_srv_records() {
    let (etcd, _client, prefix) = crate::setup!("srv");
    let port = port(&etcd.endpoint(0));
    let records = HashMap::from([
        (
            "_etcd-client._tcp.etcd.test.".to_string(),
            // The unreachable one first in the answer, but of a lower priority.
            vec![
                ("127.0.0.1.".into(), 1, 20),
                ("127.0.0.1.".into(), port, 10),
            ],
        ),
        (
            "_etcd-client-ssl-prod._tcp.etcd.test.".to_string(),
            vec![("127.0.0.1.".into(), 2379, 0)],
        ),
    ]);
    let dns = dns_server(records).await;

    let srv = SrvDiscovery::new("etcd.test").name_server(dns);
    assert_eq!(
        srv.endpoints().await.unwrap(),
        [
            format!("http://127.0.0.1:{port}"),
            "http://127.0.0.1:1".to_string()
        ]
    );
    let client = crate::builder().discovery(srv).connect().await.unwrap();
    client.put(format!("{prefix}k"), "found").await.unwrap();
    let value = client.range(format!("{prefix}k")).await.unwrap();
    assert_eq!(value.kvs()[0].value_str().unwrap(), "found");
    assert_eq!(client.endpoints().len(), 2);

    let prod = SrvDiscovery::new("etcd.test.")
        .service_name("prod")
        .name_server(dns);
    assert_eq!(
        prod.endpoints().await.unwrap(),
        ["https://127.0.0.1:2379".to_string()]
    );

    let none = SrvDiscovery::new("other.test").name_server(dns);
    let err = crate::builder()
        .discovery(none)
        .connect()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("SRV discovery under \"other.test\" failed")
            && text.contains("no SRV records"),
        "{text}"
    );
    assert!(!err.is_outcome_unknown());
    let bad = SrvDiscovery::new("").endpoints().await.unwrap_err();
    assert!(
        bad.to_string().contains("invalid SRV discovery domain"),
        "{bad}"
    );
}
