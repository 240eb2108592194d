"""What a comment speaks of (delivery, support, price...), so the dashboard can show why detractors are
unhappy and followup can route by topic.

A topic is a name with cues per language: regular expressions matched at word starts of the
lower-cased comment (Turkish folded to ASCII, so "faturam" and "fatura" match "fatura", with or
without Turkish letters). The default list is `DEFAULT_TOPICS`; a deployment may give its own as a
JSON file (`SENTIMENT_TOPICS_FILE`: {"topic": {"en": ["cue", ...], "tr": [...]}, ...}).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.sentiment.analysis.cue_matcher import CueMatcher
from services.sentiment.analysis.stopwords import ENGLISH_STOPWORDS, TURKISH_STOPWORDS
from services.sentiment.analysis.turkish import fold_turkish

STOPWORDS = {"en": ENGLISH_STOPWORDS, "tr": TURKISH_STOPWORDS}

TopicCues = Mapping[str, Mapping[str, Sequence[str]]]

DEFAULT_TOPICS: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "en": [
            r"deliver", r"shipping", r"shipped", r"ship\b", r"courier", r"driver", r"parcel", r"package",
            r"tracking", r"depot", r"dispatch", r"arriv", r"pick-?up point", r"box\b", r"order\b",
            r"order status", r"my order", r"on time", r"next day", r"wrong (?:address|door)", r"express",
            r"(?:the|my|an?) item",
        ],
        "tr": [
            r"kargo", r"kurye", r"teslim", r"paket", r"siparis", r"gonderi", r"gonderil", r"gonderdi",
            r"gonderme", r"depo", r"dagitim", r"adrese", r"kutu", r"gecikti", r"zamaninda", r"ertesi gun",
            r"urun gonder", r"urun eksik", r"takip",
        ],
    },
    "support": {
        "en": [
            r"support", r"agent", r"call\b", r"called", r"callback", r"call back", r"calls\b",
            r"phone line", r"on hold", r"ticket", r"chat", r"chatbot", r"customer service",
            r"customer experience", r"helpline", r"technician", r"engineer", r"staff", r"team\b",
            r"advisor", r"escalat", r"transferred", r"hung up", r"reply", r"replied", r"answer",
            r"emails?\b", r"update\b", r"told me", r"script", r"someone", r"nobody", r"no one", r"people",
            r"helpful", r"patient", r"rude", r"polite", r"customers", r"installers",
        ],
        "tr": [
            r"destek", r"temsilci", r"musteri hizmet", r"cagri merkez", r"aradim", r"aramak", r"arayan",
            r"arayip", r"aramadi", r"arama\b", r"geri arama", r"geri don", r"donus", r"donmedi",
            r"teknisyen", r"muhendis", r"personel", r"calisan", r"danisman", r"ekip", r"cevap", r"yanit",
            r"kimse", r"robot", r"aktarild", r"aktardi", r"yuzume kapat", r"ilgilen", r"ilgili",
            r"yardimci", r"nazik", r"kibar", r"kaba", r"sabirli", r"bekle", r"gorustum", r"talep",
            r"ariza kaydi", r"canli destek", r"ugrastir", r"sorunum", r"cozdu", r"cozuldu", r"cozulmedi",
            r"cozemedik",
        ],
    },
    "price": {
        "en": [
            r"price", r"pric", r"expensive", r"cheap\b", r"cheapest", r"overpriced", r"value for money",
            r"worth every penny", r"discount", r"hidden fees", r"rip ?off", r"cost", r"for the price",
        ],
        "tr": [
            r"fiyat", r"pahali", r"ucuz", r"indirim", r"zam\b", r"gizli ucret", r"kazik", r"kurusuna",
            r"ucret yok", r"hizmete gore",
        ],
    },
    "product_quality": {
        "en": [
            r"quality", r"product", r"broke", r"broken", r"fell apart", r"cheaply made", r"as described",
            r"wrong size", r"size chart", r"damaged", r"faulty",
        ],
        "tr": [
            r"kalite", r"urun", r"kirildi", r"dagildi", r"bozuk", r"hasar", r"yanlis beden",
            r"anlatildigi", r"resimlerdeki", r"fotograflarda",
        ],
    },
    "billing": {
        "en": [
            r"bill", r"billing", r"invoice", r"charged", r"charge", r"fee\b", r"fees\b", r"payment",
            r"pay\b", r"statement", r"transfer", r"card\b", r"card limit", r"refund", r"apple pay",
        ],
        "tr": [
            r"fatura", r"ucret", r"odeme", r"ekstre", r"havale", r"kart", r"apple pay", r"tarife",
            r"ucret kesil", r"iki kati",
        ],
    },
    "website_app": {
        "en": [
            r"app\b", r"website", r"site\b", r"online banking", r"log ?in", r"password", r"update",
            r"interface", r"dashboard", r"export", r"feature", r"dark mode", r"bug", r"crash", r"loads?\b",
            r"logged me out", r"downtime", r"outages?", r"api\b", r"integration", r"slack", r"editor",
            r"keyboard shortcuts", r"mobile version", r"filter", r"data\b", r"tool\b", r"intuitive",
            r"works\b", r"setup",
        ],
        "tr": [
            r"uygulama", r"site", r"internet bankacilig", r"sifre", r"guncelle", r"arayuz", r"aktarma",
            r"ozellik", r"karanlik mod", r"hata", r"cokuyor", r"acilmiyor", r"beni atti", r"kesinti",
            r"api\b", r"entegrasyon", r"slack", r"editor", r"kisayol", r"filtre", r"fotograf", r"veri",
            r"arac\b", r"ekran", r"excel", r"kolaylas", r"zaman asimi",
        ],
    },
    "refund": {
        "en": [
            r"refund", r"return", r"replacement", r"send it back", r"replaced",
        ],
        "tr": [
            r"iade", r"degisim", r"para iadesi", r"yenisini",
        ],
    },
    "connectivity": {
        "en": [
            r"internet", r"signal", r"coverage", r"line\b", r"dropped call", r"dropping", r"disconnect",
            r"fibre", r"fiber", r"router", r"speed", r"mbps", r"goes down", r"been down", r"shared data",
            r"outages",
        ],
        "tr": [
            r"internet", r"sinyal", r"cekim", r"hat\b", r"kopuyor", r"kopma", r"kesinti", r"modem",
            r"hiz\b", r"hizli internet", r"mbps", r"operator",
        ],
    },
    "accommodation": {
        "en": [
            r"room", r"hotel", r"stay", r"stayed", r"check-?in", r"check-?out", r"towels", r"breakfast",
            r"bed\b", r"bathroom", r"shower", r"pool", r"view", r"location", r"kettle", r"checkout",
            r"parking", r"\bac\b", r"vegan", r"booked", r"booking", r"noise",
        ],
        "tr": [
            r"oda", r"otel", r"kaldik", r"havlu", r"kahvalti", r"yatak", r"banyo", r"dus\b", r"manzara",
            r"klima", r"tatil", r"rezervasyon", r"cikis", r"giris", r"otopark", r"gurultu", r"gece",
            r"hamambocegi",
        ],
    },
}


class TopicTagger:
    """Tags comments with the topics whose cues they contain, in the order the topics are listed."""

    def __init__(self, topics: TopicCues = DEFAULT_TOPICS) -> None:
        self.names = tuple(topics)
        # Per language, the cues of all topics as one alternation (cue_matcher.py: word-gated, one pass).
        cues_of: dict[str, list[tuple[str, str]]] = {}
        for index, cues in enumerate(topics.values()):
            for language, words in cues.items():
                for word in words:
                    folded = fold_turkish(word) if language == "tr" else word
                    cues_of.setdefault(language, []).append((str(index), folded))
        self._matchers = {
            language: CueMatcher(cues, STOPWORDS.get(language, ()), word_end=False)
            for language, cues in cues_of.items()
        }

    @classmethod
    def from_file(cls, path: str | Path) -> TopicTagger:
        """A tagger from a JSON file of {"topic": {"en": [cues], "tr": [cues]}}."""
        topics = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(topics, dict) or not all(
            isinstance(cues, dict) and all(isinstance(words, list) for words in cues.values())
            for cues in topics.values()
        ):
            raise ValueError(f"{path}: expected {{topic: {{language: [cue, ...]}}}}")
        return cls(topics)

    def tag(self, text: str, language: str) -> list[str]:
        matcher = self._matchers.get(language)
        if matcher is None:
            return []
        normalized = fold_turkish(text) if language == "tr" else text.lower().replace("’", "'")
        found = {int(kind) for _, kind in matcher.find(normalized)}
        return [self.names[index] for index in sorted(found)]
