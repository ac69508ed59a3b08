//! Prebuilt patterns: litellm 1.110.2 `patterns.json`, as data.

use std::sync::{Arc, OnceLock};

use crate::engine::pyre::*;

// ─────────────────────────────────────────────────────────────────────────────
// Prebuilt patterns (litellm 1.110.2 `patterns.json`, as facts: the reference's appendices)
// ─────────────────────────────────────────────────────────────────────────────

/// One prebuilt pattern: its regex and, for contextual patterns, the keyword regex that must
/// occur near a match.
#[derive(Clone, Copy, Debug)]
pub struct Prebuilt {
    pub name: &'static str,
    pub regex: &'static str,
    pub keyword: Option<&'static str>,
}

/// The 85 prebuilt patterns, in `patterns.json` order. Only `nl_bsn_contextual` accepts
/// spelled-out digits.
pub const PREBUILT: &[Prebuilt] = &[
    Prebuilt {
        name: "us_ssn",
        regex: r#"\b\d{3}-\d{2}-\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "us_ssn_no_dash",
        regex: r#"\b(?!000|666|9\d{2})\d{3}(?!00)\d{2}(?!0000)\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "email",
        regex: r#"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "us_phone",
        regex: r#"\b(?:\+?1[\s.-]?)?\(?([0-9]{3})\)?[\s.-]?([0-9]{3})[\s.-]?([0-9]{4})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "visa",
        regex: r#"\b4\d{3}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "mastercard",
        regex: r#"\b5[1-5]\d{2}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "amex",
        regex: r#"\b3[47]\d{2}[\s\-]?\d{6}[\s\-]?\d{5}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "discover",
        regex: r#"\b6(?:011|5\d{2})[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "credit_card",
        regex: r#"(?:\b4\d{3}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b|\b5[1-5]\d{2}[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b|\b3[47]\d{2}[\s\-]?\d{6}[\s\-]?\d{5}\b|\b6(?:011|5\d{2})[\s\-]?\d{4}[\s\-]?\d{4}[\s\-]?\d{4}\b)"#,
        keyword: None,
    },
    Prebuilt {
        name: "aws_access_key",
        regex: r#"\b(AKIA[0-9A-Z]{16})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "aws_secret_key",
        regex: r#"\b([A-Za-z0-9/+=]{40})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "github_token",
        regex: r#"\b(gh[ps]_[a-zA-Z0-9]{36})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "slack_token",
        regex: r#"\b(xox[pboa]-[0-9]{10,13}-[0-9]{10,13}-[a-zA-Z0-9]{24,32})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "generic_api_key",
        regex: r#"\b([Aa][Pp][Ii][-_]?[Kk][Ee][Yy][\s:=]+['"]?[A-Za-z0-9_\-]{20,}['"]?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "openai_api_key",
        regex: r#"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,200}T3BlbkFJ(?:(?!sk-(?:proj|svcacct|admin|None)-)[A-Za-z0-9_\-]){20,200}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9_]))"#,
        keyword: None,
    },
    Prebuilt {
        name: "anthropic_api_key",
        regex: r#"(?:(?<![A-Za-z0-9])|(?<=\\[nrt])|(?<=\\u[0-9A-F]{4})|(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2}))sk-ant-[A-Za-z0-9_\-]{20,}"#,
        keyword: None,
    },
    Prebuilt {
        name: "gemini_api_key",
        regex: r#"(?:(?<![A-Za-z0-9])|(?<=\\[nrt])|(?<=\\u[0-9A-F]{4})|(?<=%[0-9A-F]{2})|(?<=%25[0-9A-F]{2}))(?:(?-i:AIza)[A-Za-z0-9_\-]{33,36}|(?-i:AQ\.)[A-Za-z0-9_\-]{45,55})(?![A-Za-z0-9_])"#,
        keyword: None,
    },
    Prebuilt {
        name: "ipv4",
        regex: r#"\b(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "ipv6",
        regex: r#"(?<![0-9a-fA-F:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:|:(?::[0-9a-fA-F]{1,4}){1,7}|::|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}|(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}|(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(?::[0-9a-fA-F]{1,4}){1,6})(?![0-9a-fA-F:])"#,
        keyword: None,
    },
    Prebuilt {
        name: "url",
        regex: r#"\b(?:https?://|www\.)[^\s/$.?#].[^\s]*\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_us",
        regex: r#"\b([A-Z][0-9]{8}|[0-9]{9})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_uk",
        regex: r#"\b[0-9]{9}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_germany",
        regex: r#"\b[CFGHJKLMNPRTVWXYZ0-9]{9}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_france",
        regex: r#"\b[0-9]{2}[A-Z]{2}[0-9]{5}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_netherlands",
        regex: r#"\b[A-Z]{2}[A-Z0-9]{6}[0-9]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_canada",
        regex: r#"\b([A-Z]{2}[0-9]{6}|[A-Z][0-9]{6}[A-Z]{2})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_india",
        regex: r#"\b[A-Z][0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_australia",
        regex: r#"\b[A-Z][0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_china",
        regex: r#"\b[EeGg][0-9]{8}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "passport_japan",
        regex: r#"\b[A-Z]{2}[0-9]{7}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "gender_sexual_orientation",
        regex: r#"\b(non-?binary|enby|genderqueer|genderfluid|gender-?fluid|agender|bigender|pangender|two-?spirit|trans(gender|sexual|masc|fem)?|cis(gender)?|intersex|MTF|FTM|AMAB|AFAB|assigned\s+(male|female)\s+at\s+birth|gay|lesbian|bisexual|pansexual|omnisexual|polysexual|asexual|aromantic|demisexual|heterosexual|homosexual|queer|LGBTQ\+?|LGBT\+?|LGBTQIA\+?|same-?sex|opposite-?sex|sexual\s+orientation|sexual\s+preference|gender\s+identity|sex\s+change|gender\s+reassignment|gender\s+confirmation|sexual\s+minority|he\/him|she\/her|they\/them|xe\/xem|ze\/zir|wom[ae]ns?|females?|males?)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "race_ethnicity_national_origin",
        regex: r#"\b(caucasian|african[- ]?american|black|white|asian|hispanic|latino|latina|latinx|pacific\s+islander|native\s+american|indigenous|first\s+nations|aboriginal|mestizo|mulatto|biracial|multiracial|mixed[- ]?race|person\s+of\s+colou?r|POC|BIPOC|ethnic(ity)?|racial|race|arab|middle\s+eastern|south\s+asian|east\s+asian|southeast\s+asian|european|african|caribbean|west\s+indian|haitian|jamaican|cuban|puerto\s+rican|mexican|dominican|salvadoran|guatemalan|honduran|colombian|venezuelan|peruvian|brazilian|chinese|japanese|korean|vietnamese|filipino|filipina|indian|pakistani|bangladeshi|sri\s+lankan|nepali|thai|indonesian|malaysian|burmese|cambodian|laotian|hmong|somali|ethiopian|nigerian|ghanaian|kenyan|south\s+african|egyptian|moroccan|algerian|iranian|iraqi|syrian|lebanese|palestinian|israeli|turkish|afghan|uzbek|kazakh|russian|ukrainian|polish|german|italian|irish|british|french|spanish|portuguese|greek|albanian|serbian|croatian|bosnian|romani|roma|gypsy|jewish|ashkenazi|sephardic|mizrahi|native\s+hawaiian|samoan|tongan|fijian|guamanian|chamorro|inuit|aleut|metis|maori|aboriginal\s+australian|torres\s+strait)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "religion",
        regex: r#"\b(christians?|catholics?|protestants?|baptists?|methodists?|lutherans?|presbyterians?|episcopal|pentecostal|evangelicals?|orthodox\s+christian|mormons?|latter[- ]?day\s+saint|LDS|jehovah'?s?\s+witness(es)?|seventh[- ]?day\s+adventist|amish|mennonite|quakers?|jewish|jews?|judaism|orthodox\s+jew|hasidic|muslims?|islam(ic)?|sunni|shia|shiite|sufi|nation\s+of\s+islam|hindus?(ism)?|buddhists?|buddhism|sikhs?(ism)?|jains?(ism)?|shinto|taoists?|taoism|confucian|zoroastrian|baha'?i|rastafari(an)?|pagans?|wiccans?|druids?|satanist|scientolog(y|ist)|unitarian|agnostics?|atheists?|secular|non-?religious|spiritual\s+but\s+not\s+religious|religious\s+belief|religious\s+practice|place\s+of\s+worship|church|mosque|synagogue|temple|gurdwara|kosher|halal|sabbath|shabbat|ramadan|lent|yom\s+kippur|rosh\s+hashanah|diwali|eid|hijab|yarmulke|kippah|turban|religious\s+head\s*covering)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "age_discrimination",
        regex: r#"\b(elderly|senior\s+citizens?|seniors?|old\s+age|aged\s+\d+|retirees?|retired|pensioners?|baby\s+boomers?|boomers?|geriatric|over\s+the\s+hill|too\s+old|too\s+young|young\s+person|millennials?|gen[- ]?z|junior|age\s+discrimination|ageism|years?\s+old|\d+\s*years?\s*old|over\s+\d+|under\s+\d+|older\s+workers?|older\s+employees?|older\s+candidates?|in\s+their\s+\d{2}s?|date\s+of\s+birth|DOB|birth\s*date|born\s+in\s+\d{4}|age\s+\d{2,3})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "disability",
        regex: r#"\b(disabled|disabilit(y|ies)|handicap(ped)?|impair(ed|ment|ments)?|wheelchair|blind(ness)?|deaf(ness)?|hard\s+of\s+hearing|hearing\s+impaired|visually\s+impaired|mute|paralyz(ed|is)|quadriplegic|paraplegic|amputee|prosthetic|cripple[d]?|mentally\s+ill|mental\s+illness|mental\s+disorder|psychiatric|schizophren(ia|ic)|bipolar|depression|depressed|anxiety\s+disorder|PTSD|autis(m|tic)|asperger'?s?|ADHD|ADD|dyslexia|dyslexic|learning\s+disabilit(y|ies)|intellectual\s+disabilit(y|ies)|down'?s?\s+syndrome|cerebral\s+palsy|epilep(sy|tic)|seizure\s+disorder|multiple\s+sclerosis|MS\s+patient|parkinson'?s?|alzheimer'?s?|dementia|chronic\s+illness|chronic\s+pain|fibromyalgia|lupus|crohn'?s?|cancer\s+patient|HIV|AIDS|diabetic|diabetes|SSI|SSDI|disability\s+benefits|disability\s+income|ADA|reasonable\s+accommodation|special\s+needs|service\s+animal|service\s+dog|guide\s+dog)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "marital_family_status",
        regex: r#"\b(married|unmarried|single|divorced|separated|widowed|widow|widower|spouse|husband|wife|domestic\s+partner|civil\s+union|common[- ]?law|marital\s+status|maiden\s+name|alimony|child\s+support|custody|pregnant|pregnancy|maternity|paternity|expecting|family\s+status|number\s+of\s+children|dependents|childless|child[- ]?free|single\s+parent|single\s+mother|single\s+father|unwed|out\s+of\s+wedlock|illegitimate|family\s+planning|birth\s+control|fertility|IVF|adoption|adopted|foster\s+parent|guardian)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "military_status",
        regex: r#"\b(veterans?|military|armed\s+forces|army|navy|air\s+force|marines?(?:\s+corps)?|coast\s+guard|national\s+guard|reserves?(?:ist)?|active\s+duty|deployment|deployed|enlisted|commissioned|honorable\s+discharge|dishonorable\s+discharge|VA\s+benefits|GI\s+bill|military\s+service|service\s+members?|servicemembers?|SCRA|MLA|military\s+lending)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "public_assistance",
        regex: r#"\b(welfare|public\s+assistance|food\s+stamps|SNAP|WIC|TANF|medicaid|section\s+8|housing\s+voucher|subsidized\s+housing|public\s+housing|government\s+benefits|social\s+services|unemployment\s+(benefits|insurance)|UI\s+benefits|EBT|benefit\s+recipient)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "weapons_firearms",
        regex: r#"\b(gun|firearm|rifle|shotgun|pistol|handgun|revolver|semi[- ]?automatic|automatic\s+weapon|assault\s+rifle|AR-?15|AK-?47|machine\s+gun|submachine\s+gun|SMG|ammunition|ammo|bullet(s)?|cartridge|caliber|9mm|\.45|\.38|\.357|\.22|12\s+gauge|hollow\s+point|armor\s+piercing|magazine|clip|suppressor|silencer|bump\s+stock|trigger|barrel|concealed\s+carry|open\s+carry|CCW|ghost\s+gun|3D\s+printed\s+gun|untraceable\s+firearm|straw\s+purchase|gun\s+show|FFL|firearms\s+dealer)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "weapons_other",
        regex: r#"\b(knife|blade|machete|switchblade|butterfly\s+knife|balisong|brass\s+knuckles|knuckle\s+duster|baton|blackjack|taser|stun\s+gun|pepper\s+spray|mace|crossbow|bow\s+and\s+arrow|compound\s+bow|sword|katana|throwing\s+star|shuriken|nunchaku|nunchucks|tomahawk|hatchet|axe\s+attack|ice\s+pick|garrote|zip\s+gun|improvised\s+weapon|shiv|shank|pipe\s+bomb)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "explosives",
        regex: r#"\b(bomb|explosive|detonate|detonator|detonation|IED|improvised\s+explosive|pipe\s+bomb|mail\s+bomb|car\s+bomb|truck\s+bomb|suicide\s+bomb|vest\s+bomb|dirty\s+bomb|fertilizer\s+bomb|ANFO|ammonium\s+nitrate|C-?4|plastic\s+explosive|dynamite|TNT|nitroglycerin|black\s+powder|gunpowder|blasting\s+cap|fuse|timer\s+device|remote\s+detonation|pressure\s+cooker\s+bomb|nail\s+bomb|shrapnel|fragmentation|incendiary|molotov|firebomb|thermite|napalm|grenade|hand\s+grenade|frag\s+grenade|flash\s+bang|smoke\s+bomb|landmine|claymore|semtex|RDX|PETN|how\s+to\s+(make|build|construct)\s+(a\s+)?bomb)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "violence_threats",
        regex: r#"\b(kill|murder|assassinate|execute|slaughter|massacre|bloodbath|genocide|ethnic\s+cleansing|mass\s+shooting|shooting\s+spree|rampage|gun\s+down|mow\s+down|hunt\s+(down|them)|take\s+(them|him|her)\s+out|eliminate|neutralize|liquidate|hit\s+(list|man)|contract\s+kill|hired\s+gun|death\s+threat|threat(en)?\s+to\s+kill|gonna\s+kill|going\s+to\s+kill|want\s+(to|him|her|them)\s+dead|deserve\s+to\s+die|need(s)?\s+to\s+die|shoot\s+up|bomb\s+threat|terrorize|reign\s+of\s+terror|burning\s+down|burn\s+it\s+down|blow\s+(it|them|this)\s+up|torture|mutilate|dismember|decapitate|behead|strangle|suffocate|drown|poison|stab|slash|cut\s+(throat|them)|slit\s+(throat|wrists)|beat\s+to\s+death|bludgeon|maim|cripple|kneecap)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "terrorism",
        regex: r#"\b(terroris[tm]|jiha[di]|mujahideen|martyr(dom)?\s+operation|holy\s+war|caliphate|ISIS|ISIL|Islamic\s+State|Al[- ]?Qaeda|Al[- ]?Shabaab|Boko\s+Haram|Hezbollah|Hamas|Taliban|lone\s+wolf|radicalize[d]?|radicalization|extremis[tm]|white\s+supremac(y|ist)|neo[- ]?nazi|skinhead|aryan|white\s+power|white\s+nationalist|race\s+war|day\s+of\s+the\s+rope|Turner\s+Diaries|accelerationism|boogaloo|proud\s+boys|oath\s+keepers|three\s+percenter|militia\s+movement|domestic\s+terroris[tm]|cell|sleeper\s+cell|attack\s+planning|soft\s+target|hard\s+target|high\s+value\s+target|infidel|kuffar|crusader|manifest(o)?|insurgent|insurrection|armed\s+uprising|overthrow\s+the\s+government|civil\s+war\s+2|RAHOWA|fourteen\s+words|1488|88|HH)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "self_harm_suicide",
        regex: r#"\b(suicid(e|al)|kill\s+myself|end\s+(my|it\s+all)|take\s+my\s+(own\s+)?life|don'?t\s+want\s+to\s+live|want\s+to\s+die|better\s+off\s+dead|no\s+reason\s+to\s+live|nothing\s+to\s+live\s+for|end\s+the\s+pain|self[- ]?harm|cut(ting)?\s+myself|slit\s+(my\s+)?wrists|overdose|OD|hang\s+myself|jump\s+off|jump\s+from|bridge\s+jump|train\s+tracks|pills\s+to\s+die|lethal\s+dose|LD50|how\s+to\s+kill\s+(myself|yourself)|suicide\s+method|painless\s+death|exit\s+bag|helium\s+hood|suicide\s+note|goodbye\s+letter|final\s+letter|last\s+words|pro[- ]?ana|pro[- ]?mia|thinspiration|self[- ]?starv(e|ation)|purging)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "illegal_activities",
        regex: r#"\b(money\s+launder(ing)?|launder\s+money|structuring|smurfing|wash\s+(the\s+)?money|clean\s+money|dirty\s+money|drug\s+traffick(ing)?|narco|cartel|drug\s+deal(er|ing)?|drug\s+lord|kingpin|cocaine|heroin|fentanyl|meth(amphetamine)?|crack|opioid|human\s+traffick(ing)?|sex\s+traffick(ing)?|smuggl(e|ing)|contraband|black\s+market|dark\s+web|darknet|hitman|contract\s+killer|murder\s+for\s+hire|arson|extort(ion)?|blackmail|ransom|kidnap(ping)?|abduct(ion)?|hostage|fraud\s+scheme|ponzi|pyramid\s+scheme|identity\s+theft|credit\s+card\s+fraud|wire\s+fraud|bank\s+fraud|embezzle(ment)?|brib(e|ery)|kickback|racketeering|RICO|organized\s+crime|mob|mafia|syndicate|gang\s+activity|criminal\s+enterprise)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "harassment_hate",
        regex: r#"\b(n[i1]gg[e3]r|f[a4]gg[o0]t|k[i1]ke|sp[i1]c|ch[i1]nk|g[o0]{2}k|w[e3]tb[a4]ck|r[e3]t[a4]rd|tr[a4]nny|shemale|dyke|cunt|kill\s+all|gas\s+the|lynch|hang\s+the|exterminate|subhuman|untermensch|mongrel|mud\s+people|race\s+traitor|coal\s+burner|oil\s+driller|oven|lampshade|helicopter\s+ride|throw\s+from|rooftop|wood\s+chipper|dox(x)?(ing)?|swat(ting)?|harass(ment)?|stalk(ing|er)?|cyber\s*bully|death\s+threat|rape\s+threat|bomb\s+threat|shoot\s+up|gonna\s+find\s+you|know\s+where\s+you\s+live|coming\s+for\s+you)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "nl_bsn_contextual",
        regex: r#"\b[0-9]{9}\b"#,
        keyword: Some(
            r#"(?:\b(?:BSN|B\.S\.N\.|burgerservicenummer|burger\s*service\s*nummer|sofi\s*nummer|sofinummer|persoonsnummer|identificatienummer|citizen\s*service\s*number)\b|8\s*5\s*\|\\\|)"#,
        ),
    },
    Prebuilt {
        name: "br_cpf",
        regex: r#"\d{3}\.\d{3}\.\d{3}(-|/)\d{2}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cpf_unformatted",
        regex: r#"\b\d{11}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_phone_landline",
        regex: r#"(?:\(?\d{2}\)?\s?)?(?:9\d{4}|\d{4})-?\d{4}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_phone_mobile",
        regex: r#"(?:\+\d{1,3}\s?)?(?:\(?\d{2}\)?\s?)?9\d{4}-?\d{4}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cep",
        regex: r#"\b\d{5}-?\d{3}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_cnpj",
        regex: r#"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}"#,
        keyword: None,
    },
    Prebuilt {
        name: "br_rg",
        regex: r#"\b\d{1,2}\.\d{3}\.\d{3}-[\dXx]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "au_tfn",
        regex: r#"\b\d{8,9}\b"#,
        keyword: Some(
            r#"\b(?:TFN|T\.F\.N\.|tax\s*file\s*(?:number|no\.?)|tax\s*file\s*#?|ATO\s*number)\b"#,
        ),
    },
    Prebuilt {
        name: "au_abn",
        regex: r#"\b\d{2}\s?\d{3}\s?\d{3}\s?\d{3}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "au_medicare",
        regex: r#"\b(?:\d{4}\s?\d{5}\s?\d{1}|\d{11})\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "iban",
        regex: r#"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "fr_nir",
        regex: r#"\b[12][0-9]{2}(0[1-9]|1[0-2])[0-9]{2}[0-9]{3}[0-9]{3}[0-9]{2}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "eu_iban_enhanced",
        regex: r#"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{4}[0-9]{7}[A-Z0-9]{0,16}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "fr_phone",
        regex: r#"(?<!\d)(?:\+33|0033|0)[1-9][0-9]{8}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "eu_vat",
        regex: r#"\b(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)[0-9A-Z]{8,12}\b"#,
        keyword: Some(
            r#"\b(?:VAT|V\.A\.T\.|TVA|IVA|BTW|MWST|value\s*added\s*tax|tax\s*number|tax\s*id|fiscal\s*number|fiscal\s*code)\b"#,
        ),
    },
    Prebuilt {
        name: "eu_passport_generic",
        regex: r#"\b[0-9]{2}[A-Z]{2}[0-9]{5}\b"#,
        keyword: Some(
            r#"\b(?:passport|passeport|travel\s*document|document\s*number|reisepass|paspoort|paszport)\b"#,
        ),
    },
    Prebuilt {
        name: "fr_postal_code",
        regex: r#"\b[0-9]{5}\b"#,
        keyword: Some(r#"\b(?:code\s*postal|postal\s*code|CP|zip\s*code|postcode)\b"#),
    },
    Prebuilt {
        name: "street_address",
        regex: r#"\b\d{1,6}\s+[A-Za-z0-9][A-Za-z0-9\s.'-]*\s+(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Circle|Cir)\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "airline_pnr",
        regex: r#"\b[A-Z]{6}\b"#,
        keyword: Some(
            r#"\b(?:PNR|booking\s*(?:reference|ref|code|number|confirmation)|reservation\s*(?:code|number|ref)|record\s*locator|confirmation\s*(?:code|number)|itinerary\s*(?:number|ref))\b"#,
        ),
    },
    Prebuilt {
        name: "skywards_number",
        regex: r#"\b(?:EK\s?)?\d{9,10}\b"#,
        keyword: Some(
            r#"\b(?:[Ss]kywards|frequent\s*flyer|FF\s*(?:number|no|#)|loyalty\s*(?:number|id|member)|member\s*(?:number|id|#)|miles\s*(?:account|number)|tier\s*(?:number|status))\b"#,
        ),
    },
    Prebuilt {
        name: "uae_emirates_id",
        regex: r#"\b784-?\d{4}-?\d{7}-?\d\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "uae_phone",
        regex: r#"(?<!\d)(?:\+971|00971|0)\s?(?:2|3|4|6|7|9|50|52|54|55|56|58)\s?\d{3}\s?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "flight_number",
        regex: r#"\b(?:EK|QF|BA|AA|LH|AF|SQ|CX|QR|EY|FZ|WY|GF|KU|SV|MS|RJ|ME|PK|AI|UL|WS|9W|6E)\s?\d{1,4}\b"#,
        keyword: Some(
            r#"\b(?:flight|departure|arrival|gate|boarding|schedule|operate|route|aircraft|plane|outbound|inbound|leg|sector|flying)\b"#,
        ),
    },
    Prebuilt {
        name: "sg_nric",
        regex: r#"\b[STFGM]\d{7}[A-Z]\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "sg_phone",
        regex: r#"(?<!\d)(?:\+65|0065|65)\s?[689]\d{3}\s?\d{4}\b"#,
        keyword: None,
    },
    Prebuilt {
        name: "sg_postal_code",
        regex: r#"\b[0-8]\d{5}\b"#,
        keyword: Some(
            r#"\b(?:postal\s*code|postcode|zip\s*code|Singapore\s*\d|blk|block|address|HDB|flat|unit)\b"#,
        ),
    },
    Prebuilt {
        name: "passport_singapore",
        regex: r#"\b[EK]\d{7}\b"#,
        keyword: Some(r#"\b(?:passport|travel\s*document|document\s*number|immigration|ICA)\b"#),
    },
    Prebuilt {
        name: "sg_uen",
        regex: r#"\b(?:\d{8}[A-Z]|\d{9}[A-Z]|[TR]\d{2}[A-Z]{2}\d{4}[A-Z])\b"#,
        keyword: Some(
            r#"\b(?:UEN|company\s*registration|business\s*registration|ACRA|entity\s*number|ROC|ROS)\b"#,
        ),
    },
    Prebuilt {
        name: "sg_bank_account",
        regex: r#"\b\d{3}-\d{5,6}-\d{1,3}\b"#,
        keyword: Some(
            r#"\b(?:bank\s*account|account\s*number|DBS|OCBC|UOB|POSB|savings|current\s*account|bank\s*statement)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_sin",
        regex: r#"\b[1-9]\d{2}[\-\s]\d{3}[\-\s]\d{3}\b"#,
        keyword: Some(
            r#"\b(?:social\s*insurance\s*number|numéro\s*d'assurance\s*sociale|social\s*insurance|SIN|NAS)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_ohip",
        regex: r#"\b\d{4}[\-\s]?\d{3}[\-\s]?\d{3}[\-\s]?[A-Z]{2}\b"#,
        keyword: Some(
            r#"\b(?:OHIP\s*number|health\s*card\s*number|health\s*insurance\s*number|OHIP|health\s*card|health\s*insurance|ontario\s*health|health\s*number|carte\s*santé)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_on_drivers_licence",
        regex: r#"\b[A-Z]\d{4}[\-\s]\d{5}[\-\s]\d{5}\b"#,
        keyword: Some(
            r#"\b(?:driver'?s?\s*licen[cs]e\s*number|ontario\s*licen[cs]e\s*number|driver'?s?\s*licen[cs]e|licen[cs]e\s*number|DL\s*number|ontario\s*licen[cs]e|permis\s*de\s*conduire|numéro\s*de\s*permis)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_immigration_doc",
        regex: r#"\b(?:\d{4}[\-\s]\d{4}[\-\s]\d{2}|[TUFW]\d{8,10}|IMM[\-\s]?\d{4,5})\b"#,
        keyword: Some(
            r#"\b(?:unique\s*client\s*identifier|study\s*permit\s*number|work\s*permit\s*number|study\s*permit|work\s*permit|UCI|immigration|IRCC|permanent\s*resident|PR\s*card|permis\s*d'études|permis\s*de\s*travail|landed\s*immigrant|temporary\s*resident)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_bank_account",
        regex: r#"\b\d{5}[\-\s]\d{3}[\-\s]\d{7,12}\b"#,
        keyword: Some(
            r#"\b(?:bank\s*account|account\s*number|transit\s*number|institution\s*number|branch\s*number|routing\s*number|direct\s*deposit|void\s*cheque|chequing|savings\s*account|numéro\s*de\s*compte|dépôt\s*direct)\b"#,
        ),
    },
    Prebuilt {
        name: "ca_postal_code",
        regex: r#"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][\-\s]?\d[ABCEGHJ-NPRSTV-Z]\d\b"#,
        keyword: Some(
            r#"\b(?:postal\s*code|zip\s*code|mailing\s*address|street\s*address|shipping\s*address|home\s*address|code\s*postal|postcode)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_student_id",
        regex: r#"\b10\d{8}\b"#,
        keyword: Some(
            r#"\b(?:student\s*id\s*number|student\s*number|employee\s*id\s*number|employee\s*number|student\s*id|employee\s*id|utorid|uoft\s*id|university\s*of\s*toronto|u\s*of\s*t)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_utorid",
        regex: r#"\b[a-z]{2,6}\d{1,4}\b"#,
        keyword: Some(
            r#"\b(?:utorid|utoid|utor\s*id|uoft\s*login|university\s*of\s*toronto\s*login|acorn\s*login|acorn\s*portal|quercus\s*login|quercus\s*course|portal\s*login|weblogin|shibboleth)\b"#,
        ),
    },
    Prebuilt {
        name: "uoft_tcard",
        regex: r#"\b\d{16}\b"#,
        keyword: Some(
            r#"\b(?:tcard\s*number|t-card\s*number|tcard|t-card|campus\s*card|campus\s*id|university\s*card)\b"#,
        ),
    },
];

pub(crate) struct CompiledPrebuilt {
    pub(crate) regex: Arc<PyRegex>,
    pub(crate) keyword: Option<Arc<PyRegex>>,
}

pub(crate) type PrebuiltEntry = Result<(Arc<PyRegex>, Option<Arc<PyRegex>>), String>;

/// A prebuilt pattern, compiled once per process.
pub(crate) fn prebuilt(name: &str) -> Result<CompiledPrebuilt, String> {
    static CACHE: OnceLock<Vec<OnceLock<PrebuiltEntry>>> = OnceLock::new();
    let Some(i) = PREBUILT.iter().position(|p| p.name == name) else {
        let names: Vec<&str> = PREBUILT.iter().map(|p| p.name).collect();
        return Err(format!(
            "Unknown pattern name: '{name}'. Available patterns: {}",
            names.join(", ")
        ));
    };
    let cache = CACHE.get_or_init(|| PREBUILT.iter().map(|_| OnceLock::new()).collect());
    let entry = cache[i].get_or_init(|| {
        let p = &PREBUILT[i];
        let regex = PyRegex::new(p.regex, true).map_err(|e| e.describe(p.regex))?;
        let keyword = match p.keyword {
            Some(k) => Some(Arc::new(PyRegex::new(k, true).map_err(|e| e.describe(k))?)),
            None => None,
        };
        Ok((Arc::new(regex), keyword))
    });
    match entry {
        Ok((regex, keyword)) => Ok(CompiledPrebuilt {
            regex: regex.clone(),
            keyword: keyword.clone(),
        }),
        Err(e) => Err(e.clone()),
    }
}
