//! `words!`: an enum whose variants each have one text form, used by `as_str`, `Display`,
//! `FromStr` and serde alike, so the four can never disagree.

macro_rules! words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$( $text ),+].len()] = [ $( $name::$variant, )+ ];

            /// The text stored in SQL and carried on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::ParseEnumError { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

#[cfg(test)]
pub(crate) mod check {
    use std::fmt::Debug;
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    /// Checks an enum against the strings stored and sent today: every variant has its text
    /// in `as_str`, `Display`, `FromStr` and JSON, every text is a variant, nothing else parses.
    pub fn words<T>(all: &[T], today: &[&str])
    where
        T: Copy + Debug + PartialEq + FromStr + Serialize + DeserializeOwned + std::fmt::Display,
        <T as FromStr>::Err: Debug,
    {
        assert_eq!(all.len(), today.len(), "one text per variant");
        for (v, text) in all.iter().zip(today) {
            assert_eq!(v.to_string(), *text);
            assert_eq!(text.parse::<T>().expect(text), *v);
            let json = serde_json::to_string(v).expect("serialises");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).expect("reads back"), *v);
        }
        for bad in ["", "Normal", "unknown-word", " normal"] {
            assert!(bad.parse::<T>().is_err(), "{bad:?} parsed");
            assert!(serde_json::from_str::<T>(&format!("\"{bad}\"")).is_err());
        }
    }
}
