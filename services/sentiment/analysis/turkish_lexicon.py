"""Turkish polarity lexicon for customer comments (written by hand, before the labeled set).

Keys are stems; a comment's word matches the longest stem it starts with (Turkish is agglutinative:
"memnun", "memnunum", "memnuniyetle"). Values are valences on VADER's scale, -4..+4. A stem with a
value of 0 exists only to stop a shorter stem from matching: "geçti" (went) is not "geç" (late).
"""

from __future__ import annotations

TURKISH_VALENCES: dict[str, float] = {
    # praise and satisfaction
    "iyi": 1.9, "iyileş": 1.2, "güzel": 2.0, "harika": 3.0, "mükemmel": 3.2, "muhteşem": 3.2,
    "şahane": 3.0, "süper": 2.8, "efsane": 2.8, "müthiş": 2.8, "enfes": 2.8, "kusursuz": 3.0,
    "başarılı": 2.2, "başarı": 1.8, "memnun": 2.2, "memnuniyet": 2.2, "beğen": 2.0, "sev": 2.0,
    "bayıl": 2.8, "hoş": 1.6, "hoşnut": 2.0, "tatmin": 1.6, "mutlu": 2.4, "sevin": 2.0, "keyif": 1.8,
    "kaliteli": 2.0, "sağlam": 1.8, "olumlu": 1.6, "etkili": 1.8,
    "kullanışlı": 1.8, "pratik": 1.4, "kolay": 1.5,
    "rahat": 1.5, "sorunsuz": 2.0, "problemsiz": 2.0, "zahmetsiz": 1.8, "temiz": 1.6, "düzgün": 1.6,
    "özenli": 2.0, "özen": 1.6, "titiz": 1.8, "profesyonel": 2.0, "güler": 1.8, "kibar": 2.0,
    "nazik": 2.0, "saygılı": 1.8, "ilgili": 1.8, "ilgilen": 1.6, "alakadar": 1.4, "yardımsever": 2.2,
    "yardımcı": 1.8, "çözüm": 1.2, "çözdü": 1.8, "çözül": 1.4, "hızlı": 1.8, "hızlıca": 1.6,
    "hemen": 1.0, "anında": 1.6, "zamanında": 1.8, "erken": 1.2, "çabuk": 1.6, "uygun": 1.4,
    "ucuz": 1.2, "ekonomik": 1.2, "değer": 1.2, "tavsiye": 1.8, "öner": 1.4, "teşekkür": 1.9,
    "sağol": 1.8, "sağ ol": 1.8, "eline sağlık": 2.2, "tebrik": 2.2, "bravo": 2.4, "güven": 1.6,
    "güvenil": 1.8, "sorumlu": 1.2, "dürüst": 1.8, "samimi": 1.6, "anlayışlı": 1.8, "sabırlı": 1.6,
    "bilgili": 1.6, "ilgi": 1.2, "takdir": 2.0, "harikulade": 3.0, "fevkalade": 3.0, "nefis": 2.6,
    "işe yara": 1.6, "faydalı": 1.8, "yararlı": 1.8, "verimli": 1.6, "başarıyla": 1.6, "doğru": 1.0,
    "eksiksiz": 2.0, "sağlıklı": 1.2, "şükran": 1.8, "minnettar": 2.2, "mutluluk": 2.2, "kazanç": 1.0,
    "favori": 2.0, "ideal": 2.0, "kalite": 0.8, "fiyat performans": 1.2, "sıcak": 0.8, "şeker": 1.4,
    "tatlı": 1.2, "lezzetli": 2.2, "kurtar": 1.6, "destekle": 0.8, "üst düzey": 2.4, "birinci sınıf": 2.6,
    # complaints and dissatisfaction
    "kötü": -2.2, "berbat": -3.0, "rezalet": -3.2, "rezil": -3.0, "felaket": -3.0, "korkunç": -3.0,
    "vasat": -1.2, "idare eder": -0.4, "kalitesiz": -2.2, "bozuk": -2.2, "bozul": -2.0, "kırık": -2.0,
    "kırıl": -1.8, "hasar": -2.0, "hasarlı": -2.2, "ezik": -1.6, "ezil": -1.6, "yırtık": -1.8,
    "çizik": -1.4, "eksik": -1.6, "kayıp": -1.8, "kaybol": -2.0, "yanlış": -1.8, "hata": -1.6,
    "hatalı": -2.0, "arıza": -2.0, "arızalı": -2.2, "sorun": -1.6, "problem": -1.6, "sıkıntı": -1.6,
    "dert": -1.6, "mağdur": -2.6, "şikayet": -1.8, "şikâyet": -1.8, "yavaş": -1.6, "geç": -1.6,
    "gecik": -1.8, "gecikme": -1.8, "geciken": -1.8, "bekle": -0.6, "beklet": -1.8, "oyala": -2.0,
    "kaba": -2.4, "saygısız": -2.6, "ilgisiz": -2.2, "umursama": -2.2, "özensiz": -2.2, "dikkatsiz": -2.0,
    "sorumsuz": -2.4, "beceriksiz": -2.6, "yetersiz": -2.0, "işe yaramaz": -2.4, "gereksiz": -1.4,
    "pahalı": -1.6, "fahiş": -2.4, "kazık": -2.6, "dolandır": -3.2, "sahtekar": -3.2, "yalan": -2.4,
    "kandır": -2.6, "aldat": -2.6, "hayal kırıklığı": -2.4, "pişman": -2.4, "üzgün": -1.8,
    "üzül": -1.8, "üzücü": -2.0, "sinir": -2.0, "sinirlen": -2.2, "kızgın": -2.2, "öfke": -2.4,
    "nefret": -3.0, "iğrenç": -3.0, "pis": -2.2, "kirli": -2.0, "leke": -1.4, "bayat": -1.8,
    "çürük": -2.4, "sahte": -2.6, "taklit": -1.8, "zarar": -2.0, "ceza": -1.6, "iptal": -1.2,
    "fena": -1.8, "olumsuz": -1.8, "etkisiz": -1.8, "değmez": -2.0, "değmedi": -2.0,
    "maalesef": -1.6, "malesef": -1.6, "yazık": -2.0, "ne yazık": -2.0, "saçma": -2.2,
    "rezillik": -3.2, "skandal": -3.0, "berbattı": -3.0, "fiyasko": -2.8, "vahim": -2.6, "zor": -1.2,
    "zorluk": -1.4, "karmaşık": -1.2, "anlaşılmaz": -1.6, "çalışmıyor": -2.2, "donuyor": -1.8,
    "çök": -2.0, "bozuldu": -2.2, "yıpran": -1.4, "dağınık": -1.4, "ulaşılamı": -2.2, "ulaşamadım": -2.2,
    "ulaşamıyor": -2.2, "cevapsız": -2.0, "yanıtsız": -2.0, "ilgilenmedi": -2.2, "ilgilenmiyor": -2.2,
    "mahvol": -2.8, "mahvet": -2.8, "eziyet": -2.6, "işkence": -3.0, "kabus": -3.0, "tehlikeli": -2.2,
    "uyumsuz": -1.4, "kusurlu": -2.0, "kusur": -1.4, "yorucu": -1.6, "bıktı": -2.4, "bık": -2.2,
    "usandı": -2.2, "bezdi": -2.4, "yoruldum": -1.6, "bıkkın": -2.2, "perişan": -2.6, "utanç": -2.4,
    "ayıp": -2.4, "fiyat yüksek": -1.4, "kırgın": -1.8, "yetkisiz": -1.2, "tutarsız": -1.6,
    # neutral guards: words a shorter stem above would otherwise claim
    "geçti": 0.0, "geçen": 0.0, "geçmiş": 0.0, "geçir": 0.0, "geçer": 0.0, "geçiş": 0.0, "geçe": 0.0,
    "geçmedi": 0.0, "iyice": 0.0, "sevk": 0.0, "sevki": 0.0, "hoşça": 0.0, "değerlendir": 0.0,
    "değişim": 0.0, "değiş": 0.0, "doğrudan": 0.0, "doğrultu": 0.0, "zorunda": 0.0, "zorunlu": 0.0,
    "ilgili olarak": 0.0, "sorunun": -1.6, "beklenti": 0.0, "beklen": 0.0, "hemencecik": 1.0,
    "uygulama": 0.0, "uygula": 0.0, "sınırlı": -0.6, "erkek": 0.0, "ucuzluk": 1.0, "kalıcı": 0.0,
    "kolay gelsin": 0.0, "rahatsız": -2.0, "güvenlik": 0.0, "kötüydü": -2.2, "sevgili": 0.0,
    "tavsiyeniz": 0.0, "değerli": 0.8, "sık": 0.0, "sıkıl": -1.6, "gece": 0.0,
}

# Verbs whose negated form ("gelmedi", "çalışmıyor", "aramadılar") is a complaint in itself, though the
# verb alone is neutral. Valence of the negated form.
TURKISH_NEGATED_VERB_VALENCES: dict[str, float] = {
    "gel": -1.8, "ulaş": -1.8, "çalış": -2.0, "ara": -1.6, "dön": -1.8, "cevap ver": -2.0, "yanıtla": -2.0,
    "çöz": -2.0, "çözül": -2.0, "ilgilen": -2.2, "yardım et": -2.0, "teslim et": -1.8, "gönder": -1.6,
    "karşıla": -1.6, "yet": -1.6, "iade et": -1.8, "öde": -1.4, "aç": -1.4, "tut": -1.2, "düzel": -1.8,
    "yap": -1.0, "ver": -1.0, "bilgilendir": -1.6, "haber ver": -1.6, "yardım ed": -2.0,
    "teslim ed": -1.8, "iade ed": -1.8,
}

# Auxiliary verbs: their negated form negates the sentiment word just before them
# ("yardımcı olmadılar", "memnun kalmadım", "hiçbir sorun yaşamadım").
TURKISH_AUXILIARY_VERBS: tuple[str, ...] = (
    "ol", "et", "ed", "kal", "bul", "yaşa", "gör", "çık", "gel", "yap", "hisset", "eyle",
)

# Words that negate the sentiment word before them.
TURKISH_NEGATORS: tuple[str, ...] = ("değil", "yok")

# Boosters multiply the next sentiment word; downtoners damp it.
TURKISH_INTENSIFIERS: dict[str, float] = {
    "çok": 1.35, "cok": 1.35, "gerçekten": 1.3, "son derece": 1.45, "oldukça": 1.2, "aşırı": 1.45,
    "fazla": 1.2, "fazlasıyla": 1.35, "en": 1.3, "inanılmaz": 1.4, "müthiş": 1.35, "epey": 1.2,
    "bayağı": 1.2, "gayet": 1.2, "kesinlikle": 1.3, "tamamen": 1.25, "resmen": 1.3, "acayip": 1.35,
    "hiç": 1.3, "asla": 1.3, "tam": 1.15, "bir hayli": 1.2, "cidden": 1.3, "gerçek": 1.15,
    "daha": 1.1, "çokça": 1.2, "harbiden": 1.3, "feci": 1.4, "hiçbir": 1.2,
    "biraz": 0.7, "az": 0.75, "nispeten": 0.75, "kısmen": 0.7, "pek": 0.8, "azıcık": 0.65,
    "hafif": 0.75, "ufak": 0.8, "bir nebze": 0.7, "neredeyse": 0.85,
}

# Contrast: what follows "ama" weighs more than what came before it, as in VADER's "but" rule.
TURKISH_CONTRAST_WORDS: tuple[str, ...] = ("ama", "fakat", "ancak", "lakin", "ne var ki")
