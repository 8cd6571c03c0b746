//! Cluster membership and maintenance: status, members, alarms, defragmentation.

use crate::client::Client;
use crate::error::Result;
use crate::types::Header;
use etcd_wire::cluster as wc;
use etcd_wire::maintenance as wm;
pub use etcd_wire::maintenance::AlarmType;

/// The status of one member, from `client.status()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    header: Header,
    version: String,
    db_size: i64,
    db_size_in_use: i64,
    leader: u64,
    raft_index: u64,
    raft_term: u64,
    raft_applied_index: u64,
    is_learner: bool,
    errors: Vec<String>,
}

impl ServerStatus {
    /// The member's etcd version, such as `"3.5.1"`.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// The size of the backend database in bytes.
    pub fn db_size(&self) -> i64 {
        self.db_size
    }
    /// The bytes of the database in use (3.4+; defragmenting frees the rest).
    pub fn db_size_in_use(&self) -> i64 {
        self.db_size_in_use
    }
    /// The member ID of the leader as this member sees it (0: no leader).
    pub fn leader(&self) -> u64 {
        self.leader
    }
    /// The ID of the member that answered.
    pub fn member_id(&self) -> u64 {
        self.header.member_id
    }
    /// True when the member that answered is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.header.member_id
    }
    /// The current raft index.
    pub fn raft_index(&self) -> u64 {
        self.raft_index
    }
    /// The current raft term.
    pub fn raft_term(&self) -> u64 {
        self.raft_term
    }
    /// The raft index applied to the store.
    pub fn raft_applied_index(&self) -> u64 {
        self.raft_applied_index
    }
    /// True when the member is a learner.
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }
    /// Errors the member reports (alarms, corruption...).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        self.header.revision
    }
    /// The response header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// Shows one line, like a row of `etcdctl endpoint status` (IDs in hex): `member
/// 8e9e05c52164694d (leader): etcd 3.5.1, raft term 2, index 12, revision 5, db 20480
/// bytes (16384 in use)`.
impl std::fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "member {:x}", self.member_id())?;
        if self.is_leader() {
            f.write_str(" (leader)")?;
        } else if self.leader == 0 {
            f.write_str(" (no leader)")?;
        } else {
            write!(f, " (leader {:x})", self.leader)?;
        }
        if self.is_learner {
            f.write_str(" (learner)")?;
        }
        write!(
            f,
            ": etcd {}, raft term {}, index {}, revision {}, db {} bytes ({} in use)",
            self.version,
            self.raft_term,
            self.raft_index,
            self.revision(),
            self.db_size,
            self.db_size_in_use
        )?;
        if !self.errors.is_empty() {
            write!(f, ", errors: {}", self.errors.join("; "))?;
        }
        Ok(())
    }
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    is_learner: bool,
}

impl From<wc::Member> for Member {
    fn from(m: wc::Member) -> Member {
        Member {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

impl Member {
    /// The member ID.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The member's name (empty until a newly added member has started).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// URLs the other members reach it at.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }
    /// URLs clients reach it at.
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }
    /// True for a learner (non-voting) member.
    pub fn is_learner(&self) -> bool {
        self.is_learner
    }
}

/// An active alarm on a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alarm {
    /// The member that raised it.
    pub member_id: u64,
    /// What it is about.
    pub alarm: AlarmType,
}

fn members(list: Vec<wc::Member>) -> Vec<Member> {
    list.into_iter().map(Member::from).collect()
}

impl Client {
    /// The status of the member behind the current endpoint.
    ///
    /// With auth on, etcd 3.5.28 to 3.5.31, 3.6.9 to 3.6.11 and 3.4.42+ answer it only to
    /// an admin (a user with the `root` role): anyone else gets [`Error::Auth`] with the
    /// server's PermissionDenied (7) "etcdserver: permission denied".
    ///
    /// [`Error::Auth`]: crate::Error::Auth
    pub async fn status(&self) -> Result<ServerStatus> {
        let s: wm::StatusResponse = self.call(&wm::StatusRequest::default()).await?;
        Ok(ServerStatus {
            header: s.header.into(),
            version: s.version,
            db_size: s.db_size,
            db_size_in_use: s.db_size_in_use,
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            is_learner: s.is_learner,
            errors: s.errors,
        })
    }

    /// The client URL of the cluster's leader, in one call: asks the current endpoint's
    /// member for the leader's ID, then the member list for its first client URL. `None`
    /// when that member knows no leader (an election is under way, or it is cut off).
    ///
    /// ```no_run
    /// # async fn demo(client: etcd_kv::Client) -> etcd_kv::Result<()> {
    /// if let Some(url) = client.leader_endpoint().await? {
    ///     let leader = etcd_kv::Client::connect(url).await?;
    ///     println!("{}", leader.status().await?);
    /// }
    /// # Ok(()) }
    /// ```
    #[doc(alias = "leader")]
    pub async fn leader_endpoint(&self) -> Result<Option<String>> {
        let leader = self.status().await?.leader();
        if leader == 0 {
            return Ok(None);
        }
        let members = self.member_list().await?;
        Ok(members
            .into_iter()
            .find(|m| m.id == leader)
            .and_then(|m| m.client_urls.into_iter().next()))
    }

    /// Replaces the endpoint list at run time (shared by this client's clones). Calls in
    /// flight finish on the endpoints they started with; watches and keep-alives stay on
    /// their member until their stream ends, then reconnect within the new list. An
    /// endpoint kept from the old list keeps its connections; the client stays on its
    /// current endpoint while it is in the new list.
    ///
    /// URLs are checked as [`ClientBuilder::endpoint`](crate::ClientBuilder::endpoint)
    /// checks them. An invalid URL, an empty list, or an `https://` URL for a client built
    /// with neither `https://` endpoints nor [`tls`](crate::ClientBuilder::tls) is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput), and changes nothing.
    pub fn set_endpoints<I, S>(&self, urls: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let urls = urls.into_iter().map(Into::into).collect();
        self.inner.backend.set_endpoints(urls)
    }

    /// Sets the endpoint list to the cluster's members as `member_list` reports them now:
    /// the client URLs of the voting members that have started (a learner serves no
    /// linearizable read and takes no write; a member added but not started has no client
    /// URL yet), in the schemes this client already uses (a client given `https://`
    /// endpoints never moves to plain `http://` ones a member also advertises). Returns
    /// the list in use afterwards. A member list without such a URL changes nothing (the
    /// client keeps a list that worked rather than none). See also
    /// [`ClientBuilder::auto_sync`](crate::ClientBuilder::auto_sync).
    pub async fn sync_endpoints(&self) -> Result<Vec<String>> {
        crate::membership::sync(&self.inner.backend, self.deadline).await
    }

    /// The members of the cluster. With auth on, etcd 3.4.42+, 3.5.28+ and 3.6.9+ answer
    /// only an authenticated user (a client with credentials or a token).
    pub async fn member_list(&self) -> Result<Vec<Member>> {
        let r: wc::MemberListResponse = self.call(&wc::MemberListRequest::default()).await?;
        Ok(members(r.members))
    }

    /// Adds a member (or a learner) reachable at `peer_urls`; returns it and the new list.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>)> {
        let request = wc::MemberAddRequest {
            peer_urls,
            is_learner,
        };
        let r: wc::MemberAddResponse = self.call(&request).await?;
        Ok((r.member.into(), members(r.members)))
    }

    /// Removes a member; returns the remaining ones.
    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>> {
        let r: wc::MemberRemoveResponse = self.call(&wc::MemberRemoveRequest { id }).await?;
        Ok(members(r.members))
    }

    /// Changes a member's peer URLs; returns the members.
    pub async fn member_update(&self, id: u64, peer_urls: Vec<String>) -> Result<Vec<Member>> {
        let request = wc::MemberUpdateRequest { id, peer_urls };
        let r: wc::MemberUpdateResponse = self.call(&request).await?;
        Ok(members(r.members))
    }

    /// Promotes a learner to a voting member (3.4+); returns the members.
    pub async fn member_promote(&self, id: u64) -> Result<Vec<Member>> {
        let r: wc::MemberPromoteResponse = self.call(&wc::MemberPromoteRequest { id }).await?;
        Ok(members(r.members))
    }

    /// The active alarms of the cluster (e.g. NOSPACE when the quota is exceeded). With
    /// auth on, etcd 3.4.42+, 3.5.28+ and 3.6.9+ answer only an authenticated user.
    pub async fn alarms(&self) -> Result<Vec<Alarm>> {
        self.alarm(wm::AlarmAction::Get, 0, AlarmType::None).await
    }

    /// Clears an alarm (member 0 and `AlarmType::None`: every alarm); returns the cleared ones.
    pub async fn alarm_disarm(&self, member_id: u64, alarm: AlarmType) -> Result<Vec<Alarm>> {
        self.alarm(wm::AlarmAction::Deactivate, member_id, alarm)
            .await
    }

    async fn alarm(
        &self,
        action: wm::AlarmAction,
        member_id: u64,
        alarm: AlarmType,
    ) -> Result<Vec<Alarm>> {
        let request = wm::AlarmRequest {
            action,
            member_id,
            alarm,
        };
        let r: wm::AlarmResponse = self.call(&request).await?;
        Ok(r.alarms
            .into_iter()
            .map(|a| Alarm {
                member_id: a.member_id,
                alarm: a.alarm,
            })
            .collect())
    }

    /// Defragments the backend of the member behind the current endpoint, returning freed
    /// space to the file system. The member answers nothing else meanwhile.
    pub async fn defragment(&self) -> Result<()> {
        let _: wm::DefragmentResponse = self.call(&wm::DefragmentRequest::default()).await?;
        Ok(())
    }

    /// Asks the leader (the current endpoint must be the leader) to hand leadership to
    /// member `target_id`.
    pub async fn move_leader(&self, target_id: u64) -> Result<()> {
        let _: wm::MoveLeaderResponse = self.call(&wm::MoveLeaderRequest { target_id }).await?;
        Ok(())
    }
}
