//! A small FlatBuffers table written by hand with the flatbuffers crate's builder and reader
//! API, as `flatc` would generate it for:
//!
//! ```text
//! table Rec { name: string; n: ulong; }
//! root_type Rec;
//! ```

use etcd_pmap::FlatBuffers;
use flatbuffers::{
    FlatBufferBuilder, Follow, ForwardsUOffset, InvalidFlatbuffer, VOffsetT, Verifiable, Verifier,
};

/// The owned value stored in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FbRec {
    pub name: String,
    pub n: u64,
}

impl FbRec {
    pub fn sample() -> FbRec {
        FbRec {
            name: "flat\u{e9}".into(),
            n: 1 << 40,
        }
    }
}

/// The accessor over a buffer, like flatc's generated `Rec<'a>`.
struct RecTable<'a> {
    table: flatbuffers::Table<'a>,
}

impl RecTable<'_> {
    const VT_NAME: VOffsetT = 4;
    const VT_N: VOffsetT = 6;

    fn name(&self) -> Option<&str> {
        // SAFETY: verified by `flatbuffers::root`; the field has type string.
        unsafe { self.table.get::<ForwardsUOffset<&str>>(Self::VT_NAME, None) }
    }

    fn n(&self) -> u64 {
        // SAFETY: verified by `flatbuffers::root`; the field has type ulong.
        unsafe { self.table.get::<u64>(Self::VT_N, Some(0)).unwrap_or(0) }
    }
}

impl<'a> Follow<'a> for RecTable<'a> {
    type Inner = RecTable<'a>;

    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        RecTable {
            // SAFETY: the caller guarantees a table at `loc` (checked by the verifier).
            table: unsafe { flatbuffers::Table::new(buf, loc) },
        }
    }
}

impl Verifiable for RecTable<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), InvalidFlatbuffer> {
        v.visit_table(pos)?
            .visit_field::<ForwardsUOffset<&str>>("name", Self::VT_NAME, false)?
            .visit_field::<u64>("n", Self::VT_N, false)?
            .finish();
        Ok(())
    }
}

/// The codec: build with the builder API, parse with a verified root.
pub fn codec() -> FlatBuffers<FbRec> {
    FlatBuffers::new(
        |fbb: &mut FlatBufferBuilder, rec: &FbRec| {
            let name = fbb.create_string(&rec.name);
            let start = fbb.start_table();
            fbb.push_slot::<u64>(RecTable::VT_N, rec.n, 0);
            fbb.push_slot_always(RecTable::VT_NAME, name);
            fbb.end_table(start).as_union_value()
        },
        |bytes: &[u8]| -> Result<FbRec, InvalidFlatbuffer> {
            let rec = flatbuffers::root::<RecTable>(bytes)?;
            Ok(FbRec {
                name: rec.name().unwrap_or_default().to_string(),
                n: rec.n(),
            })
        },
    )
    .file_identifier("FREC")
}
