//! [`CoresConfig`]: which cpus the control and data planes run on, and the defaults derived
//! from the machine when the config leaves them out.

use dataplane::topology::Topology;

/// `[cores]`: cpu ids as `core_affinity` (and Linux) numbers them.
///
/// A list left out is derived from the topology when the config is validated (see
/// [`CoresConfig::resolve`]); an empty list is an error. One shard runs per data core.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoresConfig {
    /// Cores for the control plane (tokio, gRPC). Default: the first allowed cpu not used
    /// for data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<Vec<usize>>,
    /// Cores for the data plane, one shard each. Default: the first allowed cpu not used for
    /// control (the same cpu on a 1-cpu machine). More shards only when listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<usize>>,
}

impl CoresConfig {
    /// The `(control, data)` cores: the lists given, and for a list left out the first
    /// allowed cpu of `topology` that the other list does not use (or, when every allowed cpu
    /// is taken, the first allowed one).
    ///
    /// With both left out that is control = the first allowed cpu and data = the second, or
    /// both the same cpu when only one is allowed.
    pub fn resolve(&self, topology: &Topology) -> (Vec<usize>, Vec<usize>) {
        let allowed = topology.allowed_cpus();
        let pick = |taken: &[usize]| -> Vec<usize> {
            allowed
                .iter()
                .find(|c| !taken.contains(c))
                .or(allowed.first())
                .map(|&c| vec![c])
                .unwrap_or_default()
        };
        match (&self.control, &self.data) {
            (Some(control), Some(data)) => (control.clone(), data.clone()),
            (Some(control), None) => (control.clone(), pick(control)),
            (None, Some(data)) => (pick(data), data.clone()),
            (None, None) => {
                let control = pick(&[]);
                let data = pick(&control);
                (control, data)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::machine;

    #[test]
    fn defaults_follow_the_number_of_cpus() {
        let none = CoresConfig::default();
        assert_eq!(none.resolve(&machine(&[3])), (vec![3], vec![3]));
        assert_eq!(none.resolve(&machine(&[0, 1])), (vec![0], vec![1]));
        // more cpus: still one shard
        assert_eq!(none.resolve(&machine(&[2, 4, 6, 8])), (vec![2], vec![4]));
    }

    #[test]
    fn a_list_left_out_avoids_the_other() {
        let t = machine(&[0, 1, 2, 3]);
        let control_only = CoresConfig {
            control: Some(vec![0, 1]),
            data: None,
        };
        assert_eq!(control_only.resolve(&t), (vec![0, 1], vec![2]));
        let data_only = CoresConfig {
            control: None,
            data: Some(vec![0, 2]),
        };
        assert_eq!(data_only.resolve(&t), (vec![1], vec![0, 2]));
        // every cpu taken: the first one is shared (and validation says whether that is allowed)
        let all = CoresConfig {
            control: None,
            data: Some(vec![0, 1, 2, 3]),
        };
        assert_eq!(all.resolve(&t), (vec![0], vec![0, 1, 2, 3]));
        let given = CoresConfig {
            control: Some(vec![3]),
            data: Some(vec![]),
        };
        assert_eq!(given.resolve(&t), (vec![3], vec![]));
    }
}
