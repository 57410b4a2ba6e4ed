//! The in-memory picture of everything the scheduler asks about: resource providers with
//! their tree, inventories, current usage, traits and aggregates. SQL stays the source of
//! truth (claims check capacity inside a transaction); this snapshot is what
//! `GET /allocation_candidates` and the list filters search, so a search over 10,000
//! providers never touches the database. The service keeps it in step after each write and
//! reloads it when another control node changed the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One inventory record of a provider for one resource class.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// What may be allocated in all: `(total - reserved) * allocation_ratio`, rounded down
    /// as Placement does.
    pub fn capacity(&self) -> i64 {
        ((self.total - self.reserved) as f64 * self.allocation_ratio) as i64
    }

    /// Whether `amount` more units fit next to `used`, honouring min/max unit and step.
    pub fn fits(&self, used: i64, amount: i64) -> bool {
        amount >= self.min_unit
            && amount <= self.max_unit
            && self.step_size > 0
            && amount % self.step_size == 0
            && used + amount <= self.capacity()
    }
}

/// One resource provider as the searches see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// The database id (stable for the provider's life, used as the key everywhere here).
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent: Option<i64>,
    pub root: i64,
    /// Resource class name → inventory.
    pub inventories: BTreeMap<String, Inventory>,
    /// Resource class name → units allocated now (absent means 0).
    pub used: BTreeMap<String, i64>,
    pub traits: BTreeSet<String>,
    /// Aggregate uuids.
    pub aggregates: BTreeSet<String>,
}

impl Provider {
    pub fn used(&self, class: &str) -> i64 {
        self.used.get(class).copied().unwrap_or(0)
    }

    /// Whether this provider alone can take `amount` of `class` now.
    pub fn can_take(&self, class: &str, amount: i64) -> bool {
        self.inventories
            .get(class)
            .is_some_and(|inv| inv.fits(self.used(class), amount))
    }
}

/// All providers, indexed by id and uuid, with the tree as child lists.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub providers: BTreeMap<i64, Provider>,
    pub by_uuid: HashMap<String, i64>,
    /// Provider id → its children's ids.
    pub children: HashMap<i64, Vec<i64>>,
}

impl Snapshot {
    /// Builds the indexes from a list of providers.
    pub fn from_providers(providers: impl IntoIterator<Item = Provider>) -> Snapshot {
        let mut snap = Snapshot::default();
        for p in providers {
            snap.providers.insert(p.id, p);
        }
        snap.reindex();
        snap
    }

    /// Recomputes `by_uuid` and `children` after providers were inserted or removed.
    pub fn reindex(&mut self) {
        self.by_uuid = self
            .providers
            .values()
            .map(|p| (p.uuid.clone(), p.id))
            .collect();
        self.children.clear();
        for p in self.providers.values() {
            if let Some(parent) = p.parent {
                self.children.entry(parent).or_default().push(p.id);
            }
        }
        for kids in self.children.values_mut() {
            kids.sort_unstable();
        }
    }

    /// Inserts or replaces one provider, keeping the indexes in step without a full
    /// [`Snapshot::reindex`] (a claim or a new compute node touches one entry of 10,000).
    pub fn upsert(&mut self, p: Provider) {
        let (old_parent, old_uuid) = match self.providers.get(&p.id) {
            Some(old) => (Some(old.parent), Some(old.uuid.clone())),
            None => (None, None),
        };
        if old_parent != Some(p.parent) {
            if let Some(Some(parent)) = old_parent {
                if let Some(kids) = self.children.get_mut(&parent) {
                    kids.retain(|k| *k != p.id);
                }
            }
            if let Some(parent) = p.parent {
                let kids = self.children.entry(parent).or_default();
                if let Err(at) = kids.binary_search(&p.id) {
                    kids.insert(at, p.id);
                }
            }
        }
        if old_uuid.as_deref() != Some(p.uuid.as_str()) {
            if let Some(u) = old_uuid {
                self.by_uuid.remove(&u);
            }
            self.by_uuid.insert(p.uuid.clone(), p.id);
        }
        self.providers.insert(p.id, p);
    }

    /// Removes one provider (a leaf: providers with children cannot be deleted).
    pub fn remove(&mut self, id: i64) {
        if let Some(p) = self.providers.remove(&id) {
            self.by_uuid.remove(&p.uuid);
            if let Some(parent) = p.parent {
                if let Some(kids) = self.children.get_mut(&parent) {
                    kids.retain(|k| *k != id);
                }
            }
            self.children.remove(&id);
        }
    }

    pub fn get(&self, id: i64) -> Option<&Provider> {
        self.providers.get(&id)
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<&Provider> {
        self.by_uuid.get(uuid).and_then(|id| self.providers.get(id))
    }

    /// The provider and all its descendants, in depth-first order.
    pub fn subtree(&self, id: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            out.push(n);
            if let Some(kids) = self.children.get(&n) {
                stack.extend(kids.iter().rev());
            }
        }
        out
    }

    /// Whether `ancestor` is `id` or above it in its tree.
    pub fn is_ancestor_or_self(&self, ancestor: i64, id: i64) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.providers.get(&c).and_then(|p| p.parent);
        }
        false
    }
}
