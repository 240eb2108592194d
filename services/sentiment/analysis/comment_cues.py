"""Cues of what customers write in NPS comments, per language, for `comments.CommentReader`.

Each entry is a regular expression matched on whole words of the lower-cased comment (Turkish folded to
ASCII first: "hâlâ gelmedi" is read as "hala gelmedi", so Turkish typed without its letters matches the
same). Written from the fitting half of bench/data/nps_comments.csv and general knowledge of support
complaints, never from the reporting half.
- complaint: an unmet expectation or an event that hurts the customer, said without sentiment words.
- praise: praise by double negation; matched first and taken out, so "can't complain" is no complaint.
- suggestion: a feature request or an idea; neutral when nothing else in the comment has a feeling.
- contrast: a word after which comes the verdict.
"""

from __future__ import annotations

_N = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|several|few|many|a few|couple of)"
_UNITS = r"(?:minutes?|hours?|days?|weeks?|months?|mins?|hrs?)"
_NEGATED_AUX = (
    r"(?:hasn't|haven't|has not|have not|didn't|did not|wasn't|weren't|was not|were not|doesn't|"
    r"does not|don't|do not|won't|will not|isn't|is not|aren't|are not|can't|cannot|couldn't|could not)"
)

ENGLISH_COMPLAINT: tuple[str, ...] = (
    r"never (?:came|come|arrived|showed(?: up)?|turned up|received|got|heard|called|rang|replied|"
    r"responded|answered|delivered|sent|fixed|resolved|refunded|happened|returned|got back)",
    r"still (?:waiting|no|not|nothing|haven't|hasn't|have not|has not|don't|doesn't|can't|cannot|isn't|"
    r"aren't|there|broken|down|missing|pending|processing|says|shows|charging|being charged)",
    r"(?:nobody|no one|noone|no-one) (?:called|came|has come|rang|answered|replied|responded|got back|"
    r"bothered|knew|knows|could tell|can tell|cared|showed|turned up|picked up|helped|came out|has come out)",
    r"no (?:reply|replies|response|answer|callback|call back|call|refund|update|sign|signal|show|one came|"
    r"help|confirmation|solution|explanation|apology)",
    r"had to (?:call|chase|ask|explain|go|wait|send|contact|email|return|pay|repeat|visit|phone|ring|"
    r"complain|cancel|fight|beg)",
    r"(?:called|asked|emailed|rang|wrote|complained|phoned|chased) (?:twice|three times|four times|"
    r"again|\w+ times|every day|repeatedly)",
    r"(?:been waiting|kept waiting|left waiting|keep waiting|waiting since|waited over|waited nearly|"
    r"waited almost)",
    r"(?:waiting|waited) (?:for )?" + _N + r" " + _UNITS,
    r"on hold",
    r"(?:took|takes|taking|after|for|over|almost|nearly) (?:\w+ ){0,4}?" + _N + r" " + _UNITS,
    _N + r" " + _UNITS + r" (?:and|later|late|now|on|of waiting|without)",
    _NEGATED_AUX
    + r" (?:arrive|arrived|come|came|show|shown|showed|turn up|work|working|apply|applied|fix|fixed|"
    r"been fixed|been resolved|been refunded|been delivered|get it|got it|get back|receive|received|load|"
    r"answer|reply|replied|call|called|refund|deliver|delivered|ready|included|solve|solved|resolve|"
    r"resolved|help|helped|knock|care|have it|go through|make a transfer|log|refill)",
    r"(?:charged|billed) (?:twice|double|two times|for a|for my|for the|full price|again)",
    r"(?:double|over)[ -]?charged",
    r"(?:extra|hidden|surprise|unexpected|another) (?:charges?|fees?)",
    r"(?:price|prices|bill|fee|fees) (?:increase|increased|hike|went up|goes up|gone up|up again|doubled)",
    r"another (?:fee|charge|price|delay|excuse|sorry|outage|bug|automatic|email|increase)",
    r"wrong (?:size|item|items|address|order|door|one|answer|product|colou?r|parcel|package|model|"
    r"person|bill|amount)",
    r"(?:is|was|were|got|are|item|items|parcel|package|order|card|box) (?:lost|missing|damaged|broken|"
    r"stolen|crushed|empty|cancelled|canceled|dead|faulty|opened)",
    r"(?:arrived|came|delivered) (?:damaged|broken|empty|open|late|opened|crushed|wet|dirty)",
    r"missing from",
    r"(?:keeps|kept|keep|constantly|always) (?:dropping|crashing|failing|disconnecting|freezing|logging|"
    r"breaking|going down|cutting|changing|giving|sending|asking|moving|losing)",
    r"(?:crashes|crashed|crashing|freezes|froze|times out|timed out|hung up|hangs up|hang up|cut off|"
    r"logged me out|locked out|got locked|was locked|blocked my|went down|goes down|is down|was down|"
    r"been down|fell apart|falls apart|broke on|broke after|broke down|stopped working|not working|"
    r"doesn't work|does not work|"
    r"didn't work|did not work|won't load|nothing loads|doesn't load|nothing happened|for nothing|"
    r"no help|can't help you|cannot help you|breaks something|broke on|drops out)",
    r"(?:transferred|passed|bounced) (?:\w+ )?(?:times|around|between|from)",
    r"(?:left|leaving|threw|thrown|dumped) (?:it |my \w+ |the \w+ |me )?(?:outside|in the rain|at the "
    r"wrong|over the fence|without)",
    r"(?:nobody|no one) (?:was|is) home",
    r"for the (?:second|third|fourth|fifth|tenth|\w+th) time",
    r"(?:second|third|fourth|fifth) time",
    _N + r" (?:days|weeks|months|hours) late",
    r"(?:cockroach\w*|bed ?bugs|mou?ldy?|smelled of|smells of|smell of)",
    r"(?:new|different|moved the|changed the) (?:dates?|times)",
    r"(?:moved|changed|rescheduled) " + _N + r" times",
    r"automatic (?:reply|replies|response|responses|emails?)",
    r"sorry for the inconvenience",
    r"(?:instead of|rather than) (?:the|my|a|an)",
    r"no sign of",
    r"(?:without|before) (?:fixing|solving|resolving|knocking|asking|telling|calling|warning)",
    r"closed my (?:ticket|case|complaint)",
    r"(?:cancelled|canceled) (?:my|the) (?:order|booking|appointment|reservation)",
    r"(?:read|reading) from a script",
    r"(?:out for delivery|processing) for",
    r"(?:paying|pay|paid) for (?:a|an|internet|a service|something|nothing)",
    r"(?:can't|cannot|couldn't|could not|unable to) (?:log|login|use|access|get through|reach|pay|make|"
    r"find|cancel|close)",
    r"(?:impossible|(?:a )?nightmare|a disaster|a joke|a dealbreaker|a deal breaker|unacceptable|"
    r"(?:buyer )?beware)",
    r"(?:rip ?off|ripoff|scam)",
    r"oh (?:great|wonderful|brilliant|joy|perfect|nice|fantastic|lovely|super)",
    r"(?:construction|noise|noisy)",
    r"too many (?:bugs|errors|issues|problems|ads|steps|calls|emails|crashes)",
    r"(?:switching|moving|switched|moved|going) to (?:another|a different|a competitor|\w+ instead)",
    r"(?:would not|wouldn't|won't|will not|never) (?:stay|buy|order|come|use|recommend|go|shop|book|fly) "
    r"(?:here |there |with |from |again|it|them|this)",
    r"nothing (?:at|in|on) (?:my|the)",
    r"says (?:it was )?delivered",
    r"(?:supposed|meant|promised|told|due) to (?:arrive|come|be|ship|call|get|have|deliver|start|finish)",
    r"(?:was|were|been|is|are) promised",
    r"(?:it's|it has|it is|has|have) been " + _N + r" " + _UNITS,
    r"not as (?:described|advertised|pictured|expected|promised)",
)

ENGLISH_PRAISE: tuple[str, ...] = (
    r"(?:could not|couldn't|can't|cannot|could've not) (?:have )?(?:asked|ask|wish|wished|hope|hoped) for "
    r"(?:more|better|anything (?:more|better))",
    r"(?:could not|couldn't|can't|cannot) (?:be|have been) (?:happier|better|more \w+|easier|faster|"
    r"nicer|kinder|smoother)",
    r"(?:can't|cannot|could not|couldn't) (?:complain|fault|say a bad word|find (?:a|any) fault|"
    r"ask for (?:a )?(?:better|faster|more))",
    r"(?:can't|cannot|couldn't) imagine (?:\w+ ){1,4}without",
    r"no (?:complaints?|issues?|problems?|hassle|hidden fees|surprises|drama|bugs|downtime|fuss|worries|"
    r"faults?|delays?|waiting|wait)(?: at all| whatsoever)?",
    r"nothing (?:to complain about|bad to say|to fault|i dislike|i don't like|i would change|"
    r"was too much|missing|went wrong)",
    r"not (?:a|one) (?:single )?(?:issue|problem|complaint|scratch|thing i would change|thing i'd "
    r"change|dropped call|hiccup|fault|delay)",
    r"never (?:had|any) (?:a |an |any )?(?:single )?(?:problem|issue|complaint|reason to complain|"
    r"problems|issues|complaints|trouble)",
    r"never (?:late|let me down|lets me down|disappoint\w*|leave me waiting|leaves me waiting|failed|"
    r"fails|missed)",
    r"(?:haven't|have not|hasn't|has not|never) (?:had|seen|experienced) (?:any |a |a single |one )?"
    r"(?:downtime|issue|issues|problem|problems|outage|outages|complaint|complaints|trouble)",
    r"(?:didn't|did not|never) (?:have to|had to|need to|needed to) (?:ask|call|wait|chase|\w+ twice)",
    r"not disappointed",
    r"there (?:was|is|were) no (?:problem|issue)",
    r"(?<!not )(?<!never )(?<!n't )(?:solved|fixed|resolved|sorted) (?:my|the|it|everything|all|in|quickly|"
    r"straight|right|fast|within|on)",
    r"(?:the )?next day",
    r"(?<!not )(?:on time|worth it|worth every penny|worth the money|worth the wait|as described|"
    r"works great|works perfectly|works like a charm|straight away|right away|day early|days early|"
    r"took care of|sorted it|sorted everything|fixed everything|finally fixed|really helped|helped a lot)",
)

ENGLISH_SUGGESTION: tuple[str, ...] = (
    r"(?:it )?would (?:be )?(?:nice|good|great|helpful|useful|handy|lovely|a nice touch|better|easier|"
    r"help|make)",
    r"would (?:love|like) (?:to see|it if|to be able|to have|more)",
    r"i'?d (?:love|like) (?:to|it|more)",
    r"i wish",
    r"please (?:add|make|let|consider|include|bring|allow|offer|give|show|send|text|provide|put|keep)",
    r"(?:could|can|would) you (?:please )?(?:add|make|let|include|offer|allow|provide|send|show|consider)",
    r"consider (?:adding|offering|making|including)",
    r"suggestions?",
    r"suggest",
    r"maybe (?:add|offer|send|a|an|include|consider|have|allow|let)",
    r"you (?:could|should|might) (?:add|put|offer|include|consider|make|allow|let)",
    r"(?:should|could) (?:be|have been) (?:added|included|in the|on the|an option)",
    r"an option (?:to|for)",
    r"add (?:an?|more|some|the|weekend|support|option|options|dark|a way|an option)",
    r"feature request",
    r"make it possible",
    r"\w+ (?:would|will) (?:be )?(?:great|nice|good|helpful|useful|handy|welcome)",
    r"(?:more|some) \w+ (?:options?|choices?|sizes|photos|colou?rs) (?:please|would)",
    r"\w+ please",
)

ENGLISH_CONTRAST: tuple[str, ...] = (r"but", r"however", r"though")

TURKISH_COMPLAINT: tuple[str, ...] = (
    r"(?:hala|henuz) (?:\w+ )?(?:\w*m[ae]d[iu]\w*|\w*m[iu]yor\w*|\w*m[ae]m[ia]s\w*|yok\w*|bekl\w*|"
    r"duruyor|geliyor|hazirlaniyor|giremiyorum|ulasamiyorum|cozulmedi)",
    r"kimse (?:\w+ )?(?:aramadi|donmedi|donus|ilgilenmedi|gelmedi|cevap|bir sey bilmiyor|yok|"
    r"soyleyemiyor|\w+m[ae]d[iu]|\w+miyor|\w+muyor)",
    r"(?:arayan|gelen|getiren|donen|ilgilenen|bakan|gonderen|cevap veren|dönen|alan|soran) "
    r"(?:da |de )?(?:olmadi|yok)",
    r"geri don\w* (?:yapilmadi|yapmadi\w*|olmadi|yok|alamadim|gelmedi)",
    r"donus (?:yapmadi\w*|yapilmadi|olmadi|alamadim)",
    r"zorunda (?:kaldim|kaldik|kaliyorum|kaliyoruz|birakti\w*)",
    r"(?:tekrar tekrar|defalarca|kac kez|kac kere|bir turlu)",
    r"(?:\d+|iki|uc|dort|bes|ikinci|ucuncu|dorduncu) (?:kez|kere|defa)",
    r"(?:bekliyorum|bekledim|bekletildim|beklettiler|beklettiniz|bekletiyorsunuz|beklemedeyim|bekleyip|"
    r"bekliyoruz|bekletti|bekledik)",
    r"(?:cevap|yanit|donus|yardim) (?:yok|vermedi\w*|alamadim|alamadik|gelmedi|veren yok)",
    r"(?:ortada|ortalikta) yok",
    r"(?:eksik|yanlis|hasarli|kirik|bozuk|ezik|ezilmis|kayip|bos|acik) (?:cikti|geldi|gonder\w*|urun\w*|"
    r"beden|adres\w*|teslim\w*|paket\w*)",
    r"(?:kutudan|paketten|siparisten) eksik",
    r"kutuda yok\w*",
    r"(?:iki kez|cift|fazladan|haksiz|haberim olmayan|gizli) (?:ucret|cekim|kesinti|fatura)",
    r"(?:ucret|para) kesil\w*",
    r"zam (?:gel\w*|yap\w*)",
    r"fatura\w* (?:yanlis|yine|iki kati|artti|hala|geliyor)",
    r"iki kati",
    r"iade\w* (?:edilmedi|yok|gelmedi|yapilmadi|yatmadi|alamadim)",
    r"para\w* (?:hala )?(?:yatmadi|gelmedi|iade edilmedi|alamadim)",
    r"(?:hat|baglanti|internet|sinyal)\w* (?:kesildi|kopuyor|yok|gitti|dustu|cekmiyor)",
    r"(?:kopuyor|kopma var|kesinti var|kesintiler|cekmiyor|gurultu)",
    r"(?:cokuyor|coktu|acilmiyor|donuyor|takiliyor|calismiyor\w*|calismadi|bozuldu|bozuluyor|"
    r"bozulmasi\w*|kirildi|dagildi|beni atti|yuzume kapat\w*|kapattilar|kapatti|aktarildim|aktardilar|"
    r"silindi|bloke|zaman asimi\w*|hat kesildi|kaybettiniz|kaybetti\w*|kayboldu)",
    r"(?:gundur|gunluk|haftadir|aydir|saattir|dakikadir|gunden beri|gununden beri|haftadan beri|"
    r"aydan beri)",
    r"(?:gecikti|gecikme\b|geciktir\w*|gecikmeyle|sonra geldi|gec geldi|yine gec|sonra teslim)",
    r"(?:birakip gitmis|birakip gitti|yagmurun altinda|citin ustunden|yanlis adrese|evde kimse yok\w*)",
    r"(?:hamambocegi\w*|karinca\w*|bocek\w*|kuf\w*|pis koku)",
    r"(?:sorun|ariza|hata|problem)\w* (?:cozulmedi|cozulmeden|giderilmedi|devam ediyor|duruyor|"
    r"cozulemedi)",
    r"(?:cozulmedi|cozulmeden|duzelmedi|duzeltmedi\w*|giderilmedi|ilgilenmedi\w*)",
    r"(?:ise yaramadi\w*|ise yaramiyor|hicbir sey olmadi|hicbir sey acilmiyor|hicbir sey cozulmedi)",
    r"yardimci ol(?:a|e)ma(?:yiz|diniz|dilar|di|z)\b",
    r"(?:\d+|iki|uc|dort|bes) (?:farkli )?kisiye",
    r"(?:dort|uc|iki|bes) kez degisti",
    r"(?:yine|gene) (?:\w+ )?(?:gec|zam|ucret|yanlis|bozul\w*|bekl\w*|robot\w*|artti|dustu|atti|"
    r"kesildi|ariza|sorun)",
    r"(?:kabul edilemez|kabus|felaket|rezalet|eziyet|imkansiz)",
    r"(?:ulasamiyorum|ulasamadim|ulasmadi|ulasilamiyor|giremiyorum|baglanamiyorum)",
    r"tam fiyat",
    r"(?:para|ucret) odemek",
    r"(?:dedikleri|dediler|denildi|dendi|denmisti|soylenmisti)(?! gibi)",
    r"(?:\d+|bir|iki|uc|dort|bes|alti|on) (?:gun|hafta|ay|saat|dakika)\w* (?:surdu|sonra|gecikti|oldu)",
    r"(?:kalite\w*|performans\w*|hiz\w*) (?:cok |biraz |oldukca )?dusuk",
    r"alaka\w* (?:yok|olmayan)",
    r"(?:gibi|ayni) degil",
)

TURKISH_PRAISE: tuple[str, ...] = (
    r"hicbir (?:eksi\w*|sorun\w*|sikinti\w*|problem\w*|aksaklik\w*|kusur\w*|sikayet\w*)",
    r"sikayet\w* (?:yok|edecek|etmiyorum|etmedim)",
    r"(?:sorun|problem|sikinti|kesinti|aksaklik|ariza)\w* (?:yasamadim|yasamadik|olmadi|cikmadi|"
    r"yok|yasanmadi|cikarmadi)",
    r"kusur (?:bulam\w*|yok)",
    r"daha (?:iyisi|yardimci|iyi|hizli|guzel|ilgili) ol(?:a|)maz\w*",
    r"pisman (?:olmadim|etmedi|degilim)",
    r"yari yolda birakmadi\w*",
    r"(?:bekletmedi\w*|ugrastirmadi\w*|geri cevirmedi\w*|gecikmedi\w*)",
    r"(?:laf|kotu bir sey|kotu soz) (?:edemem|soyleyemem|diyemem)",
    r"(?:gizli ucret|surpriz) yok",
    r"(?:sevmedigim|begenmedigim) bir (?:yan|sey|yon)\w*",
    r"onsuz (?:\w+ ){0,2}dusunemiyorum",
    r"cizik bile",
    r"(?:\w+ ){0,4}zorunda kalmadim",
    r"(?:isteyecegim|istedigim|degistirecegim) hicbir sey yok",
    r"ertesi gun",
    r"tek bir (?:kesinti|sorun|problem|cizik|aksaklik|sikinti)",
    r"(?:zamaninda|vaktinde|tam zamaninda|erken geldi|bir gun erken|aninda|hemen (?:yenisini|gonderdiler|"
    r"cozdu\w*|cozuldu)|degdi|her kurusuna deger|deger\b)",
)

TURKISH_SUGGESTION: tuple[str, ...] = (
    r"olsa\b",
    r"\w+s[ae] (?:daha )?(?:iyi|guzel|harika|hos|super|faydali|sevinirim) ol\w*",
    r"olsun\b",
    r"olmali\w*",
    r"olabilir",
    r"(?:eklenebilir|eklenmeli|eklerseniz|eklenirse|eklenmesini|ekleyin|eklensin|ekleyebilir misiniz|"
    r"ekleyebilirsiniz)",
    r"\w+(?:ilse|ulse|ilsin|ulsin|ilsa|ulsa|abilsek|ebilsek|ebilsem|abilsem|abilir misiniz|ebilir misiniz)",
    r"\w+(?:ulabilir|ilebilir)",
    r"(?:isterdim|rica ederim|onerim|oneri\w*|keske|kalsin|dusunulebilir)",
)

TURKISH_CONTRAST: tuple[str, ...] = (r"ama", r"fakat", r"ancak", r"lakin", r"ne var ki")

CUES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "complaint": ENGLISH_COMPLAINT,
        "praise": ENGLISH_PRAISE,
        "suggestion": ENGLISH_SUGGESTION,
        "contrast": ENGLISH_CONTRAST,
    },
    "tr": {
        "complaint": TURKISH_COMPLAINT,
        "praise": TURKISH_PRAISE,
        "suggestion": TURKISH_SUGGESTION,
        "contrast": TURKISH_CONTRAST,
    },
}

# Whole answers that say nothing either way ("ok", "so-so", "idare eder"), after lower-casing and folding.
SHORT_NEUTRAL: dict[str, frozenset[str]] = {
    "en": frozenset(
        {"ok", "okay", "k", "fine", "meh", "so-so", "so so", "average", "alright", "n/a", "na", "none",
         "nothing", "no comment", "no comments", "nothing to add", "nothing else", "normal", "standard",
         "as expected", "not sure", "dunno", "-", "nope, nothing", "it's ok", "it was ok", "decent"}
    ),
    "tr": frozenset(
        {"ok", "tamam", "idare eder", "eh iste", "eh", "normal", "ortalama", "fikrim yok", "yok",
         "yorum yok", "bir sey yok", "eklenecek bir sey yok", "standart", "vasat", "soyle boyle",
         "ne iyi ne kotu", "bilmiyorum", "-"}
    ),
}

# Emoji that say how a customer feels; anything else (🚚, 📦) says nothing.
EMOJI: dict[str, float] = {
    **dict.fromkeys("👍👌😀😃😄😁😊🙂😍🥰❤💯🙏👏⭐🌟✅😎🤩😘💪🎉💖💙💚♥😻🥳", 1.0),
    **dict.fromkeys("👎😡😠🤬😞😢😭😤🙁☹😒💩😩😫😖❌🤮🤢😔😕😣😓👿", -1.0),
    **dict.fromkeys("😐😑🤷🤔😶", 0.0),
}
