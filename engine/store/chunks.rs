//! The chunk queue: a batch issued by several nodes sharing one store (docs/SCALE-OUT.md).
//!
//! The node that validates a batch records it as usual, then [plans](Store::plan_chunks) its
//! work: one `PART` chunk per run of rows, and one `ASSEMBLE` chunk that becomes claimable only
//! when every part is done. Any node [claims](Store::claim_chunk) the first open chunk (PENDING,
//! or RUNNING with an expired lease), renews its lease while it works, and
//! [finishes](Store::finish_chunk) it in one transaction that records the chunk's certificates,
//! failures and ZIP entries, but only while it still holds the chunk (same node, same
//! attempt). A node that died loses its lease; the next claimer redoes the chunk with fresh
//! serials, and the dead attempt's serial intents end WASTED with the batch, never reused.

use super::db::{params, Dialect, OptionalExtension, Transaction};
use super::{
    account_certificates, db, insert_certificate_rows, record_failures, to_sql_integer, BatchId,
    BatchState, BatchStatus, CertificateRecord, DeviceFailure, Store, StoreError,
};

/// Attempts after which a chunk that keeps failing (not its devices: the node's work itself,
/// such as an unreachable object store) breaks its batch instead of being claimed again.
pub const MAX_CHUNK_ATTEMPTS: u64 = 5;

/// One run of rows of a batch, as the validating node plans it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    /// First row (1-based) of the chunk.
    pub first_row: u64,
    /// Rows in the chunk.
    pub rows: u64,
    /// ZIP entry names that are not `<stem>.<extension>`, by row (repeated common names).
    pub names: Vec<(u64, String)>,
}

/// What a chunk asks of its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// Issue the chunk's rows and write their part.
    Part,
    /// Every part is done: build the ZIP's head and tail and finish the batch.
    Assemble,
}

/// A chunk a node holds, with what it needs to work on it.
#[derive(Clone, Debug)]
pub struct ClaimedChunk {
    /// Who holds it, for [`Store::renew_lease`], [`Store::finish_chunk`] and
    /// [`Store::release_chunk`].
    pub lease: ChunkLease,
    /// Part or assembly.
    pub kind: ChunkKind,
    /// First row (1-based).
    pub first_row: u64,
    /// Rows.
    pub rows: u64,
    /// Entry names that are not `<stem>.<extension>`, by row.
    pub names: Vec<(u64, String)>,
    /// The batch's work description (its JSON is the batch module's).
    pub spec_json: String,
    /// The PKCS#12 password, sealed under the nodes' shared key (none for CSR batches).
    pub sealed_password: Option<Vec<u8>>,
}

/// The holder of a chunk: a node and its attempt number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkLease {
    /// The batch.
    pub batch: BatchId,
    /// The chunk's index (parts first, the assembly last).
    pub idx: u64,
    /// The holding node's name.
    pub node: String,
    /// 1 for the first claim, counting up with each claim after an expired lease.
    pub attempt: u64,
}

/// Where an issued device's file lies in its chunk's part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    /// The device's row.
    pub row: u64,
    /// Offset of the entry's local header inside the part.
    pub offset: u64,
    /// Size of the stored data.
    pub size: u64,
    /// CRC-32 of the data.
    pub crc32: u32,
    /// SHA-256 of the data (the manifest's `sha256`).
    pub sha256: [u8; 32],
}

/// A finished part chunk, as its node records it.
pub struct ChunkOutput<'a> {
    /// The part's object key.
    pub part_key: &'a str,
    /// The part's size in bytes.
    pub part_size: u64,
    /// The issued devices' certificates.
    pub records: &'a [CertificateRecord],
    /// Their entries in the part, in the same order.
    pub entries: &'a [PartEntry],
    /// The devices that failed.
    pub failures: &'a [DeviceFailure],
}

/// Whether a finish took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Recorded.
    Done,
    /// The node no longer held the chunk (its lease expired and another node claimed it):
    /// nothing was recorded, and the caller deletes what it wrote.
    Lost,
}

/// A DONE part of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DonePart {
    /// Chunk index.
    pub idx: u64,
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// One row of a chunked batch's manifest, from the records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRow {
    /// Row.
    pub row: u64,
    /// Chunk index.
    pub chunk: u64,
    /// Device id (UUID bytes).
    pub device_id: [u8; 16],
    /// The issued device's entry, or None for a failed device.
    pub issued: Option<IssuedEntry>,
    /// Why the device failed.
    pub reason: Option<String>,
}

/// The issued half of a [`ManifestRow`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedEntry {
    /// Subject common name.
    pub common_name: String,
    /// Serial magnitude.
    pub serial: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// Entry name.
    pub file_name: String,
    /// Where it lies in its part.
    pub entry: PartEntry,
}

/// Where a finished chunked batch's ZIP pieces are (the head, `chain.pem`, is rebuilt from
/// the work description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedLayout {
    /// The batch's work description (JSON).
    pub spec_json: String,
    /// The parts in order.
    pub parts: Vec<DonePart>,
    /// The tail object (manifest entry, central directory, end records) and its size.
    pub tail: (String, u64),
}

fn names_json(names: &[(u64, String)]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
}

fn to_u64(table: &'static str, column: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::CorruptRow {
        table,
        id: String::new(),
        column,
        value: value.to_string(),
    })
}

impl Store {
    /// Records how a pending batch is issued in chunks: its work description, its sealed
    /// password, one PART chunk per plan and the ASSEMBLE chunk, in one transaction.
    ///
    /// The plans must cover rows 1..=size of the batch without gaps or overlaps.
    pub fn plan_chunks(
        &self,
        batch: BatchId,
        spec_json: &str,
        sealed_password: Option<&[u8]>,
        plans: &[ChunkPlan],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "planning a batch's chunks";
        let tx = self.write_transaction(ACTION)?;
        let state = BatchState::load(&tx, batch)?;
        if !state.status.is_pending() {
            return Err(StoreError::BatchNotPending {
                batch,
                status: state.status,
            });
        }
        let mut next = 1u64;
        for plan in plans {
            if plan.first_row != next || plan.rows == 0 {
                return Err(StoreError::InvalidChunkPlan {
                    batch,
                    reason: format!(
                        "a chunk starts at row {} with {} rows; expected row {next}",
                        plan.first_row, plan.rows
                    ),
                });
            }
            next += plan.rows;
        }
        if next - 1 != state.size {
            return Err(StoreError::InvalidChunkPlan {
                batch,
                reason: format!("the chunks cover {} rows of {}", next - 1, state.size),
            });
        }
        tx.execute(
            "INSERT INTO batch_work (batch_id, spec_json, sealed_password) VALUES (?1, ?2, ?3)",
            params![batch.0, spec_json, sealed_password],
        )
        .map_err(db(ACTION))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO chunks (batch_id, idx, kind, first_row, rows, names_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db(ACTION))?;
            for (idx, plan) in plans.iter().enumerate() {
                insert
                    .execute(params![
                        batch.0,
                        to_sql_integer("chunk", idx as u64)?,
                        "PART",
                        to_sql_integer("row", plan.first_row)?,
                        to_sql_integer("rows", plan.rows)?,
                        names_json(&plan.names),
                    ])
                    .map_err(db(ACTION))?;
            }
            insert
                .execute(params![
                    batch.0,
                    to_sql_integer("chunk", plans.len() as u64)?,
                    "ASSEMBLE",
                    1,
                    0,
                    "[]"
                ])
                .map_err(db(ACTION))?;
        }
        tx.commit().map_err(db(ACTION))
    }
}

/// The claim's statement: mark the first open chunk RUNNING for this node and return it.
/// `$lock` is where PostgreSQL locks the chosen row.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE chunks SET state = 'RUNNING', node = ?1, lease_until = ?2,
                    attempt = attempt + 1
             WHERE (batch_id, idx) = (
                 SELECT c.batch_id, c.idx FROM chunks c
                 WHERE (c.state = 'PENDING' OR (c.state = 'RUNNING' AND c.lease_until < ?3))
                   AND instr(?4, ',' || c.batch_id || ',') = 0
                   AND (c.kind = 'PART' OR NOT EXISTS (
                         SELECT 1 FROM chunks p WHERE p.batch_id = c.batch_id
                           AND p.kind = 'PART' AND p.state <> 'DONE'))
                 ORDER BY c.batch_id, c.idx LIMIT 1",
            $lock,
            ")
             RETURNING batch_id, idx, kind, first_row, rows, names_json, attempt,
                 (SELECT spec_json FROM batch_work w WHERE w.batch_id = chunks.batch_id),
                 (SELECT sealed_password FROM batch_work w WHERE w.batch_id = chunks.batch_id)"
        )
    };
}

/// SQLite has one writer at a time: the claim needs no row lock.
const CLAIM_SQLITE: &str = claim_sql!("");

/// PostgreSQL: the chosen row is locked, and a row another node is claiming (or finishing,
/// see [`Store::holds`]) is skipped, so two nodes never claim the same chunk and neither waits.
const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE OF c SKIP LOCKED");

impl Store {
    /// Claims the first open chunk of any pending batch for `node`, for `lease_secs`: a PENDING
    /// chunk, or a RUNNING one whose lease ran out (its node is presumed dead; the attempt
    /// counts up). An assembly is open only once every part of its batch is DONE.
    pub fn claim_chunk(
        &self,
        node: &str,
        lease_secs: u64,
    ) -> Result<Option<ClaimedChunk>, StoreError> {
        self.claim_chunk_except(node, lease_secs, &[])
    }

    /// [`Store::claim_chunk`], passing over the chunks of `skipped` batches (those this node
    /// found it cannot work on, [`Store::give_back_chunk`]).
    pub fn claim_chunk_except(
        &self,
        node: &str,
        lease_secs: u64,
        skipped: &[BatchId],
    ) -> Result<Option<ClaimedChunk>, StoreError> {
        const ACTION: &str = "claiming a chunk";
        // ",3,17," : the claim's `instr` test, portable to both dialects.
        let skipped = skipped.iter().fold(String::from(","), |mut list, batch| {
            list.push_str(&format!("{},", batch.0));
            list
        });
        // Row locks suffice: the claim changes one chunk row, and on PostgreSQL nodes claiming
        // at once skip each other's locked rows instead of queueing behind the write lock.
        let tx = self.connection.row_lock_transaction().map_err(db(ACTION))?;
        let now = (self.clock)();
        let until = now.saturating_add(to_sql_integer("lease", lease_secs)?);
        type Raw = (
            i64,
            i64,
            String,
            i64,
            i64,
            String,
            i64,
            String,
            Option<Vec<u8>>,
        );
        let raw: Option<Raw> = tx
            .prepare_cached(match tx.dialect() {
                Dialect::Sqlite => CLAIM_SQLITE,
                Dialect::Postgres => CLAIM_POSTGRES,
            })
            .and_then(|mut claim| {
                claim
                    .query_row(params![node, until, now, skipped], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                            row.get(7)?,
                            row.get(8)?,
                        ))
                    })
                    .optional()
            })
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        let Some((batch, idx, kind, first_row, rows, names, attempt, spec_json, sealed)) = raw
        else {
            return Ok(None);
        };
        let corrupt = |column: &'static str, value: String| StoreError::CorruptRow {
            table: "chunks",
            id: format!("batch {batch} chunk {idx}"),
            column,
            value,
        };
        let kind = match kind.as_str() {
            "PART" => ChunkKind::Part,
            "ASSEMBLE" => ChunkKind::Assemble,
            _ => return Err(corrupt("kind", kind)),
        };
        let names: Vec<(u64, String)> =
            serde_json::from_str(&names).map_err(|_| corrupt("names_json", names.clone()))?;
        Ok(Some(ClaimedChunk {
            lease: ChunkLease {
                batch: BatchId(batch),
                idx: to_u64("chunks", "idx", idx)?,
                node: node.to_owned(),
                attempt: to_u64("chunks", "attempt", attempt)?,
            },
            kind,
            first_row: to_u64("chunks", "first_row", first_row)?,
            rows: to_u64("chunks", "rows", rows)?,
            names,
            spec_json,
            sealed_password: sealed,
        }))
    }

    /// Extends a held chunk's lease to `lease_secs` from now. False when the node no longer
    /// holds it (then it stops working on it).
    pub fn renew_lease(&self, lease: &ChunkLease, lease_secs: u64) -> Result<bool, StoreError> {
        const ACTION: &str = "renewing a chunk lease";
        let tx = self.connection.row_lock_transaction().map_err(db(ACTION))?;
        let until = (self.clock)().saturating_add(to_sql_integer("lease", lease_secs)?);
        let renewed = tx
            .execute(
                "UPDATE chunks SET lease_until = ?1
                 WHERE batch_id = ?2 AND idx = ?3 AND node = ?4 AND attempt = ?5
                   AND state = 'RUNNING'",
                params![
                    until,
                    lease.batch.0,
                    to_sql_integer("chunk", lease.idx)?,
                    lease.node,
                    to_sql_integer("attempt", lease.attempt)?
                ],
            )
            .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(renewed == 1)
    }

    /// Whether `lease` still holds its chunk, inside `tx`.
    ///
    /// With `lock` on PostgreSQL the row stays locked to the end of the caller's transaction, so
    /// a claim of the same chunk (which takes no write lock) skips it meanwhile. Only a caller
    /// holding the write lock may lock it: one that waits for the write lock while holding the
    /// row could deadlock with a writer that updates the batch's chunks.
    fn holds(tx: &Transaction<'_>, lease: &ChunkLease, lock: bool) -> Result<bool, StoreError> {
        let held: Option<i64> = tx
            .query_row(
                match (tx.dialect(), lock) {
                    (Dialect::Sqlite, _) | (Dialect::Postgres, false) => {
                        "SELECT 1 FROM chunks WHERE batch_id = ?1 AND idx = ?2 AND node = ?3
                           AND attempt = ?4 AND state = 'RUNNING'"
                    }
                    (Dialect::Postgres, true) => {
                        "SELECT 1 FROM chunks WHERE batch_id = ?1 AND idx = ?2 AND node = ?3
                           AND attempt = ?4 AND state = 'RUNNING' FOR UPDATE"
                    }
                },
                params![
                    lease.batch.0,
                    to_sql_integer("chunk", lease.idx)?,
                    lease.node,
                    to_sql_integer("attempt", lease.attempt)?
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(db("checking a chunk lease"))?;
        Ok(held.is_some())
    }

    /// Finishes a part chunk: records its certificates (with their audit entries and balance
    /// moves, as [`Store::insert_certificates`]), its failures, where each entry lies in the
    /// part, and marks the chunk DONE, in one transaction, only if `lease` still holds it.
    pub fn finish_chunk(
        &self,
        lease: &ChunkLease,
        output: &ChunkOutput<'_>,
    ) -> Result<Finished, StoreError> {
        const ACTION: &str = "finishing a chunk";
        if output.records.len() != output.entries.len() {
            return Err(StoreError::InvalidChunkPlan {
                batch: lease.batch,
                reason: format!(
                    "{} certificates but {} part entries",
                    output.records.len(),
                    output.entries.len()
                ),
            });
        }
        // The rows go in first, without the write lock (on PostgreSQL): the keys of the
        // tables keep them consistent, and a late node's rows wait on (or for) the new
        // holder's. The write lock then covers the lease check again, the accounting (audit
        // chain, counters, balance) and the chunk's state, so other nodes queue only for that.
        let tx = self.connection.row_lock_transaction().map_err(db(ACTION))?;
        if !Self::holds(&tx, lease, false)? {
            return Ok(Finished::Lost);
        }
        let now = (self.clock)();
        let idx = to_sql_integer("chunk", lease.idx)?;
        let messages = if output.records.is_empty() {
            Vec::new()
        } else {
            let issuer_id = BatchState::load(&tx, lease.batch)?.issuer_id;
            insert_certificate_rows(&tx, now, lease.batch, issuer_id, output.records)?
        };
        {
            // Where each entry lies in the part, many rows a statement (a failed device has
            // no entry, only its reason).
            struct ChunkRow<'a> {
                row: i64,
                device_id: &'a [u8; 16],
                offset: Option<i64>,
                size: Option<i64>,
                crc32: Option<i64>,
                sha256: Option<&'a [u8]>,
                reason: Option<&'a str>,
            }
            let mut rows = Vec::with_capacity(output.records.len() + output.failures.len());
            for (record, entry) in output.records.iter().zip(output.entries) {
                if entry.row != record.row {
                    return Err(StoreError::InvalidChunkPlan {
                        batch: lease.batch,
                        reason: format!(
                            "part entry of row {} beside the certificate of row {}",
                            entry.row, record.row
                        ),
                    });
                }
                rows.push(ChunkRow {
                    row: to_sql_integer("row", record.row)?,
                    device_id: &record.device_id,
                    offset: Some(to_sql_integer("offset", entry.offset)?),
                    size: Some(to_sql_integer("size", entry.size)?),
                    crc32: Some(i64::from(entry.crc32)),
                    sha256: Some(entry.sha256.as_slice()),
                    reason: None,
                });
            }
            for failure in output.failures {
                rows.push(ChunkRow {
                    row: to_sql_integer("row", failure.row)?,
                    device_id: &failure.device_id,
                    offset: None,
                    size: None,
                    crc32: None,
                    sha256: None,
                    reason: Some(failure.reason.as_str()),
                });
            }
            let mut values: Vec<&dyn db::Param> = Vec::with_capacity(9 * rows.len());
            for row in &rows {
                values.extend([
                    &lease.batch.0 as &dyn db::Param,
                    &row.row,
                    &idx,
                    row.device_id,
                    &row.offset,
                    &row.size,
                    &row.crc32,
                    &row.sha256,
                    &row.reason,
                ]);
            }
            tx.insert_rows(
                "INSERT INTO chunk_rows (batch_id, row_index, chunk_idx, device_id,
                     entry_offset, entry_size, crc32, sha256, reason)",
                9,
                &values,
            )
            .map_err(db(ACTION))?;
        }
        tx.take_write_lock().map_err(db(ACTION))?;
        // Dropping the transaction rolls the rows back.
        if !Self::holds(&tx, lease, true)? {
            return Ok(Finished::Lost);
        }
        if !output.records.is_empty() {
            account_certificates(&tx, now, lease.batch, output.records, &messages)?;
        }
        if !output.failures.is_empty() {
            record_failures(&tx, now, lease.batch, output.failures)?;
        }
        tx.execute(
            "UPDATE chunks SET state = 'DONE', lease_until = NULL, part_key = ?3, part_size = ?4
             WHERE batch_id = ?1 AND idx = ?2",
            params![
                lease.batch.0,
                idx,
                output.part_key,
                to_sql_integer("size", output.part_size)?
            ],
        )
        .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))?;
        Ok(Finished::Done)
    }

    /// Gives a held chunk back after its node failed at it (not its devices: the node's own
    /// work, e.g. writing the part). It is claimable again at once; after
    /// [`MAX_CHUNK_ATTEMPTS`] the batch is abandoned (Broken, for `error`) instead.
    pub fn release_chunk(&self, lease: &ChunkLease, error: &str) -> Result<(), StoreError> {
        const ACTION: &str = "releasing a chunk";
        let tx = self.write_transaction(ACTION)?;
        if !Self::holds(&tx, lease, true)? {
            return Ok(());
        }
        tx.execute(
            "UPDATE chunks SET state = 'PENDING', node = NULL, lease_until = NULL
             WHERE batch_id = ?1 AND idx = ?2",
            params![lease.batch.0, to_sql_integer("chunk", lease.idx)?],
        )
        .map_err(db(ACTION))?;
        if lease.attempt >= MAX_CHUNK_ATTEMPTS {
            self.break_chunked_batch(
                &tx,
                lease.batch,
                &format!(
                    "chunk {} failed {} times; last error: {error}",
                    lease.idx, lease.attempt
                ),
            )?;
        }
        tx.commit().map_err(db(ACTION))
    }

    /// Gives a held chunk back without spending its attempt: the node found it cannot work on
    /// the batch at all (another key, profile or signer than the ordering node's), which says
    /// nothing about the chunk. Other nodes claim it at once; the caller skips the batch.
    pub fn give_back_chunk(&self, lease: &ChunkLease) -> Result<(), StoreError> {
        const ACTION: &str = "giving a chunk back";
        let tx = self.write_transaction(ACTION)?;
        if !Self::holds(&tx, lease, true)? {
            return Ok(());
        }
        tx.execute(
            "UPDATE chunks SET state = 'PENDING', node = NULL, lease_until = NULL,
                    attempt = attempt - 1
             WHERE batch_id = ?1 AND idx = ?2",
            params![lease.batch.0, to_sql_integer("chunk", lease.idx)?],
        )
        .map_err(db(ACTION))?;
        tx.commit().map_err(db(ACTION))
    }

    /// Ends a chunked batch Broken for `reason` inside `tx` (a CSR batch's certificates voided,
    /// as by [`Store::abandon_batch`]): its open chunks are closed and its sealed password
    /// deleted.
    fn break_chunked_batch(
        &self,
        tx: &Transaction<'_>,
        batch: BatchId,
        reason: &str,
    ) -> Result<(), StoreError> {
        const ACTION: &str = "breaking a chunked batch";
        let mut state = BatchState::load(tx, batch)?;
        if state.status.is_pending() {
            // A CSR batch's recorded certificates are voided (Store::abandon_batch).
            let mut chain = super::AuditChain::load(tx)?;
            state.break_off(tx, &mut chain, batch, Some(reason), (self.clock)(), false)?;
        }
        tx.execute(
            "UPDATE chunks SET state = 'DONE', lease_until = NULL
             WHERE batch_id = ?1 AND state <> 'DONE'",
            params![batch.0],
        )
        .map_err(db(ACTION))?;
        tx.execute(
            "UPDATE batch_work SET sealed_password = NULL WHERE batch_id = ?1",
            params![batch.0],
        )
        .map_err(db(ACTION))?;
        Ok(())
    }

    /// The DONE parts of a batch, in chunk order.
    pub fn done_parts(&self, batch: BatchId) -> Result<Vec<DonePart>, StoreError> {
        let raws: Vec<(i64, String, i64)> = self
            .connection
            .prepare_cached(
                "SELECT idx, part_key, part_size FROM chunks
                 WHERE batch_id = ?1 AND kind = 'PART' AND state = 'DONE'
                   AND part_key IS NOT NULL
                 ORDER BY idx",
            )
            .and_then(|mut select| {
                select
                    .query_map([batch.0], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db("listing a batch's parts"))?;
        raws.into_iter()
            .map(|(idx, key, size)| {
                Ok(DonePart {
                    idx: to_u64("chunks", "idx", idx)?,
                    key,
                    size: to_u64("chunks", "part_size", size)?,
                })
            })
            .collect()
    }

    /// Up to `limit` manifest rows of a chunked batch after row `after` (0 for the first), in
    /// row order: a page at a time, so building a tail never holds the batch in memory.
    pub fn manifest_rows(
        &self,
        batch: BatchId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ManifestRow>, StoreError> {
        const ACTION: &str = "reading a batch's manifest rows";
        type Raw = (
            i64,
            i64,
            Vec<u8>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let raws: Vec<Raw> = self
            .connection
            .prepare_cached(
                "SELECT r.row_index, r.chunk_idx, r.device_id, r.entry_offset, r.entry_size,
                        r.crc32, r.sha256, r.reason, c.common_name, c.serial, c.not_before,
                        c.not_after, c.file_name
                 FROM chunk_rows r
                 LEFT JOIN certificates c ON c.batch_id = r.batch_id AND c.row_index = r.row_index
                 WHERE r.batch_id = ?1 AND r.row_index > ?2
                 ORDER BY r.row_index LIMIT ?3",
            )
            .and_then(|mut select| {
                select
                    .query_map(
                        params![
                            batch.0,
                            to_sql_integer("row", after).unwrap_or(i64::MAX),
                            i64::try_from(limit).unwrap_or(i64::MAX)
                        ],
                        |row| {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                                row.get(5)?,
                                row.get(6)?,
                                row.get(7)?,
                                row.get(8)?,
                                row.get(9)?,
                                row.get(10)?,
                                row.get(11)?,
                                row.get(12)?,
                            ))
                        },
                    )?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db(ACTION))?;
        raws.into_iter()
            .map(|raw| {
                let (
                    row,
                    chunk,
                    device_id,
                    offset,
                    size,
                    crc,
                    sha,
                    reason,
                    cn,
                    serial,
                    nb,
                    na,
                    file,
                ) = raw;
                let corrupt = |column: &'static str| StoreError::CorruptRow {
                    table: "chunk_rows",
                    id: format!("batch {} row {row}", batch.0),
                    column,
                    value: String::new(),
                };
                let device_id: [u8; 16] = device_id
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("device_id"))?;
                let issued = match (offset, size, crc, sha, cn, serial, nb, na, file) {
                    (
                        Some(offset),
                        Some(size),
                        Some(crc),
                        Some(sha),
                        Some(common_name),
                        Some(serial),
                        Some(not_before),
                        Some(not_after),
                        Some(file_name),
                    ) => Some(IssuedEntry {
                        common_name,
                        serial,
                        not_before,
                        not_after,
                        file_name,
                        entry: PartEntry {
                            row: to_u64("chunk_rows", "row_index", row)?,
                            offset: to_u64("chunk_rows", "entry_offset", offset)?,
                            size: to_u64("chunk_rows", "entry_size", size)?,
                            crc32: u32::try_from(crc).map_err(|_| corrupt("crc32"))?,
                            sha256: sha.as_slice().try_into().map_err(|_| corrupt("sha256"))?,
                        },
                    }),
                    (None, ..) => None,
                    _ => return Err(corrupt("entry_offset")),
                };
                Ok(ManifestRow {
                    row: to_u64("chunk_rows", "row_index", row)?,
                    chunk: to_u64("chunk_rows", "chunk_idx", chunk)?,
                    device_id,
                    issued,
                    reason,
                })
            })
            .collect()
    }

    /// Finishes an assembly: records the tail object, deletes the sealed password,
    /// marks the chunk DONE and ends the batch in `status` (Ready For Download, Batch Issued
    /// Partly or Broken), in one transaction, only if `lease` still holds the chunk.
    pub fn finish_assembly(
        &self,
        lease: &ChunkLease,
        tail: (&str, u64),
        status: BatchStatus,
    ) -> Result<Finished, StoreError> {
        const ACTION: &str = "finishing a chunked batch";
        let tx = self.write_transaction(ACTION)?;
        if !Self::holds(&tx, lease, true)? {
            return Ok(Finished::Lost);
        }
        tx.execute(
            "UPDATE batch_work SET tail_key = ?2, tail_size = ?3, sealed_password = NULL
             WHERE batch_id = ?1",
            params![lease.batch.0, tail.0, to_sql_integer("size", tail.1)?],
        )
        .map_err(db(ACTION))?;
        tx.execute(
            "UPDATE chunks SET state = 'DONE', lease_until = NULL
             WHERE batch_id = ?1 AND idx = ?2",
            params![lease.batch.0, to_sql_integer("chunk", lease.idx)?],
        )
        .map_err(db(ACTION))?;
        let mut state = BatchState::load(&tx, lease.batch)?;
        let mut chain = super::AuditChain::load(&tx)?;
        let reason = (status == BatchStatus::Broken)
            .then_some("no device could be issued: every device failed (their reasons are in the manifest and the devices' audit log)");
        state.transition(
            &tx,
            &mut chain,
            lease.batch,
            status,
            reason,
            super::SYSTEM_ACTOR,
            (self.clock)(),
        )?;
        tx.commit().map_err(db(ACTION))?;
        Ok(Finished::Done)
    }

    /// Where a chunked batch's ZIP pieces are, once it is assembled; None for a batch issued
    /// by one node into one file, or not assembled yet.
    pub fn chunked_layout(&self, batch: BatchId) -> Result<Option<ChunkedLayout>, StoreError> {
        type Raw = (String, Option<String>, Option<i64>);
        let raw: Option<Raw> = self
            .connection
            .query_row(
                "SELECT spec_json, tail_key, tail_size FROM batch_work WHERE batch_id = ?1",
                [batch.0],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(db("reading a batch's layout"))?;
        let Some((spec_json, Some(tail), Some(tail_size))) = raw else {
            return Ok(None);
        };
        Ok(Some(ChunkedLayout {
            spec_json,
            parts: self.done_parts(batch)?,
            tail: (tail, to_u64("batch_work", "tail_size", tail_size)?),
        }))
    }

    /// Whether a batch is issued in chunks (it has planned work).
    pub fn is_chunked(&self, batch: BatchId) -> Result<bool, StoreError> {
        self.connection
            .query_row(
                "SELECT 1 FROM batch_work WHERE batch_id = ?1",
                [batch.0],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(db("reading a batch's work"))
    }

    /// Counts of a chunked batch's chunks: (parts done, parts in all).
    pub fn chunk_progress(&self, batch: BatchId) -> Result<(u64, u64), StoreError> {
        let (done, all): (i64, i64) = self
            .connection
            .query_row(
                "SELECT count(*) FILTER (WHERE state = 'DONE'), count(*) FROM chunks
                 WHERE batch_id = ?1 AND kind = 'PART'",
                [batch.0],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(db("counting a batch's chunks"))?;
        Ok((
            to_u64("chunks", "count", done)?,
            to_u64("chunks", "count", all)?,
        ))
    }
}
