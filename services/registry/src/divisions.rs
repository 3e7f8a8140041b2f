//! "The village belongs to the town", asked of identity, which owns the
//! division list: the villages of a town, from its public `ListDivisions`,
//! cached in Redis (divisions change by decree, a few times a decade).

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use huimin_proto::identity::v1::ListDivisionsRequest;

use crate::{Registry, RegistryError};

const DIVISIONS_TTL: Duration = Duration::from_secs(3600);

impl Registry {
    /// The village codes of a town; empty when identity knows no such town.
    async fn villages_of(&self, town: &str) -> Result<Vec<String>, RegistryError> {
        let key = format!("registry:divisions:{town}");
        if let Some(villages) = self.cache.get_json::<Vec<String>>(&key).await {
            return Ok(villages);
        }
        let request = ListDivisionsRequest {
            parent_code: town.to_owned(),
        };
        let villages: Vec<String> = self
            .identity
            .call(|mut identity| {
                let request = request.clone();
                async move { identity.list_divisions(request).await }
            })
            .await
            .map_err(|status| RegistryError::peer_unavailable("identity", status))?
            .into_inner()
            .divisions
            .into_iter()
            .map(|d| d.code)
            .collect();
        self.cache.set_json(&key, &villages, DIVISIONS_TTL).await;
        Ok(villages)
    }

    /// The places identity doesn't know, by index into `places` (town, village):
    /// an unknown town, or a village it doesn't list under that town. Call
    /// after the local format checks.
    pub async fn unknown_places(
        &self,
        places: &[(&str, Option<&str>)],
    ) -> Result<Vec<(usize, UnknownPlace)>, RegistryError> {
        let towns: BTreeSet<&str> = places.iter().map(|(town, _)| *town).collect();
        let mut known = HashMap::new();
        for town in towns {
            known.insert(town, self.villages_of(town).await?);
        }
        let mut unknown = Vec::new();
        for (index, (town, village)) in places.iter().enumerate() {
            let villages = known.get(town).map_or(&[][..], Vec::as_slice);
            if villages.is_empty() {
                unknown.push((index, UnknownPlace::Town));
            } else if let Some(village) = village
                && !villages.iter().any(|v| v == village)
            {
                unknown.push((index, UnknownPlace::Village));
            }
        }
        Ok(unknown)
    }
}

/// A division code identity doesn't know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownPlace {
    Town,
    Village,
}

impl UnknownPlace {
    pub fn message_zh(self) -> &'static str {
        match self {
            UnknownPlace::Town => "乡镇代码不存在",
            UnknownPlace::Village => "村代码不存在或不属于该乡镇",
        }
    }
}
