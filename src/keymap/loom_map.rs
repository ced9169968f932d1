//! The store's maps under `--cfg loom`: a `HashMap` behind one of loom's mutexes, offering the
//! calls of dashmap's the store makes, with the same meaning: a guard holds the map's lock
//! until it is dropped, an entry holds it while a slot is decided, `retain` and `iter` hold it
//! for the whole visit.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use loom::sync::{Mutex, MutexGuard};

use crate::PublicKey;

type Guard<'a, V> = MutexGuard<'a, HashMap<PublicKey, V>>;

/// A map by key behind one loom mutex.
pub(crate) struct KeyMap<V> {
    inner: Mutex<HashMap<PublicKey, V>>,
}

impl<V> std::fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMap")
    }
}

/// A new map (the shard count means nothing here).
pub(crate) fn key_map<V>(_shards: Option<usize>) -> KeyMap<V> {
    KeyMap {
        inner: Mutex::new(HashMap::new()),
    }
}

impl<V> KeyMap<V> {
    fn lock(&self) -> Guard<'_, V> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &PublicKey) -> Option<Ref<'_, V>> {
        let guard = self.lock();
        guard.contains_key(key).then_some(Ref { guard, key: *key })
    }

    pub(crate) fn get_mut(&self, key: &PublicKey) -> Option<RefMut<'_, V>> {
        let guard = self.lock();
        guard
            .contains_key(key)
            .then_some(RefMut { guard, key: *key })
    }

    pub(crate) fn entry(&self, key: PublicKey) -> Entry<'_, V> {
        let guard = self.lock();
        if guard.contains_key(&key) {
            Entry::Occupied(OccupiedEntry { guard, key })
        } else {
            Entry::Vacant(VacantEntry { guard, key })
        }
    }

    pub(crate) fn insert(&self, key: PublicKey, value: V) -> Option<V> {
        self.lock().insert(key, value)
    }

    pub(crate) fn remove(&self, key: &PublicKey) -> Option<(PublicKey, V)> {
        self.lock().remove_entry(key)
    }

    pub(crate) fn remove_if(
        &self,
        key: &PublicKey,
        f: impl FnOnce(&PublicKey, &V) -> bool,
    ) -> Option<(PublicKey, V)> {
        let mut guard = self.lock();
        let (k, v) = guard.get_key_value(key)?;
        if f(k, v) {
            guard.remove_entry(key)
        } else {
            None
        }
    }

    pub(crate) fn contains_key(&self, key: &PublicKey) -> bool {
        self.lock().contains_key(key)
    }

    pub(crate) fn retain(&self, mut f: impl FnMut(&PublicKey, &mut V) -> bool) {
        self.lock().retain(|k, v| f(k, v));
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = RefMulti<'_, V>> {
        let guard = Rc::new(self.lock());
        let keys: Vec<PublicKey> = guard.keys().copied().collect();
        keys.into_iter().map(move |key| RefMulti {
            guard: Rc::clone(&guard),
            key,
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// A value, locked for reading.
pub(crate) struct Ref<'a, V> {
    guard: Guard<'a, V>,
    key: PublicKey,
}

impl<V> Deref for Ref<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.guard[&self.key]
    }
}

/// A value, locked for writing.
pub(crate) struct RefMut<'a, V> {
    guard: Guard<'a, V>,
    key: PublicKey,
}

impl<V> Deref for RefMut<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.guard[&self.key]
    }
}

impl<V> DerefMut for RefMut<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.guard.get_mut(&self.key).expect("a held key")
    }
}

/// One value of a visit, the whole map locked while any is held.
pub(crate) struct RefMulti<'a, V> {
    guard: Rc<Guard<'a, V>>,
    key: PublicKey,
}

impl<V> RefMulti<'_, V> {
    pub(crate) fn key(&self) -> &PublicKey {
        &self.key
    }

    pub(crate) fn value(&self) -> &V {
        &self.guard[&self.key]
    }
}

impl<V> Deref for RefMulti<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.value()
    }
}

/// A key's slot, taken or free, locked.
pub(crate) enum Entry<'a, V> {
    Occupied(OccupiedEntry<'a, V>),
    Vacant(VacantEntry<'a, V>),
}

/// A taken slot, locked.
pub(crate) struct OccupiedEntry<'a, V> {
    guard: Guard<'a, V>,
    key: PublicKey,
}

impl<V> OccupiedEntry<'_, V> {
    pub(crate) fn get_mut(&mut self) -> &mut V {
        self.guard.get_mut(&self.key).expect("a held key")
    }

    pub(crate) fn remove(mut self) -> V {
        self.guard.remove(&self.key).expect("a held key")
    }
}

/// A free slot, locked.
pub(crate) struct VacantEntry<'a, V> {
    guard: Guard<'a, V>,
    key: PublicKey,
}

impl<'a, V> VacantEntry<'a, V> {
    pub(crate) fn insert(mut self, value: V) -> RefMut<'a, V> {
        self.guard.insert(self.key, value);
        RefMut {
            guard: self.guard,
            key: self.key,
        }
    }
}
