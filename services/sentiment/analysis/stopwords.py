"""Function words per language: evidence for language detection and the words key phrases leave out.

Written by hand (NLTK's stopword corpus needs a download that is not allowed at run time). The lists
for languages we do not score are short on purpose: they only have to recognise a comment as, say,
German, not to filter it.
"""

from __future__ import annotations


def word_set(text: str) -> frozenset[str]:
    """A frozenset of the whitespace-separated words of text (lists stay readable as prose)."""
    return frozenset(text.split())


ENGLISH_STOPWORDS: frozenset[str] = word_set(
    """
    a about above after again against all almost also although always am an and another any anyone
    anything are aren around as at be became because been before being below between both but by can
    cannot could couldn did didn do does doesn doing don done down during each either else enough even
    ever every few for from further get gets getting got had hadn has hasn have haven having he her
    here hers herself him himself his how however i if in into is isn it its itself just least less
    let like ll m may me might mine more most much must mustn my myself neither never no nor not now
    of off often on once one only or other others our ours ourselves out over own quite rather re
    really s same shall she should shouldn since so some someone something sometimes still such t than
    that the their theirs them themselves then there these they this those though through thus to too
    toward towards under until up upon us ve very was wasn we were weren what whatever when where
    whether which while who whom whose why will with within without won would wouldn yet you your
    yours yourself yourselves im ive id youre theyre thats dont didnt doesnt isnt wasnt cant wont
    please thanks thank ok okay yes also bit lot lots thing things way don't didn't doesn't isn't
    wasn't can't won't i'm i've it's that's there's they're you're we're couldn't wouldn't haven't
    """
)

# Verbs and fillers that carry no topic: kept out of key phrases only, so "took three weeks" does not
# become a phrase while "refund" does.
ENGLISH_NON_TOPIC_WORDS: frozenset[str] = word_set(
    """
    arrived arrive arrives came come comes coming went go goes going gone took take takes taking
    taken gave give gives given made make makes making said say says told tell asked ask called call
    tried try trying want wanted need needed needs know knew think thought feel felt seem seems seemed
    look looked looks use used using keep kept kept put let find found sent send received receive
    waited wait waiting happened happen ordered order bought buy paid pay get got getting
    everything nothing anything something everyone nobody anyone someone today yesterday tomorrow
    time times day days week weeks month months year years first last next back again ever still
    overall definitely absolutely totally completely highly extremely pretty super truly
    zero one two three four five six seven eight nine ten twenty hundred half couple several once twice
    """
)

TURKISH_STOPWORDS: frozenset[str] = word_set(
    """
    acaba ama ancak artık aslında az bana bazı belki ben beni benim bile bir birçok biri birkaç birşey
    biz bize bizi bizim bu buna bunda bundan bunu bunun burada böyle çok çünkü da daha de defa diye
    dolayı en gibi göre halde hem hep hepsi her herkes hiç hiçbir için ile ise işte kadar kendi ki kim
    mi mı mu mü nasıl ne neden nerede niye o olan olarak oldu olduğu olduk olmuş ona ondan onlar onu
    onun öyle sadece sanki şey şimdi siz size sizi sizin şu şunu tüm ve veya ya yani yine zaten değil
    değildi yok var ayrıca fakat lakin oysa rağmen sonra önce bile hala hâlâ gayet pek biraz gerçekten
    oldukça bayağı epey kesinlikle tam son derece beni bende sende onda bizde sizde onlarda falan
    """
)

# Turkish verb forms and fillers that carry no topic, kept out of key phrases.
TURKISH_NON_TOPIC_WORDS: frozenset[str] = word_set(
    """
    geldi gelmedi gelmiyor geldiler geldik gitti gitmedi aldım aldık aldı almadım verdi verdiler vermedi
    vermediler oldu olmadı olmuyor olmadılar oluyor etti etmedi etmediler ediyor yaptı yaptılar yapmadı
    yapmadılar kaldım kaldık kalmadım kalmadı dedi dediler söyledi söylediler istedim istiyorum bekledim
    bekliyorum gün günde gündür hafta haftadır ay aydır kez kere teşekkürler teşekkür ederim ederiz
    tavsiye
    """
)

# Short lists for languages we recognise but do not score; words shared with English or Turkish still
# count, split between the languages that use them.
OTHER_LANGUAGE_WORDS: dict[str, frozenset[str]] = {
    "de": word_set(
        """
        der die das und ist nicht ich sehr gut schlecht mit war ein eine einen auf für zu den dem des
        sich auch es wir sie aber noch nur wie wurde wurden bei nach kein keine mein meine danke super
        lieferung schnell langsam freundlich leider immer alles nichts hat haben bin sind oder
        """
    ),
    "es": word_set(
        """
        el la los las y es muy no que de en por con para una un pero fue del al lo se su sus mi me
        bien bueno buena malo mala gracias excelente servicio entrega rápido lento nada todo también
        está estoy son hay muy producto pedido
        """
    ),
    "fr": word_set(
        """
        le la les et est très pas je une un des du pour avec mais été il elle nous vous ce cette c
        j qu que qui dans sur au aux bien bon bonne mauvais merci service livraison rapide lent rien
        tout aussi suis sont ai avons produit commande ne
        """
    ),
    "it": word_set(
        """
        il lo la gli le e è molto non che di in per con una uno ma era del della sono ho abbiamo
        bene buono buona cattivo grazie servizio consegna veloce lento niente tutto anche prodotto
        """
    ),
    "pt": word_set(
        """
        o a os as e é muito não que de em por com para uma um mas foi do da no na meu minha
        bem bom boa ruim obrigado obrigada serviço entrega rápido lento nada tudo também produto
        """
    ),
    "nl": word_set(
        """
        de het een en is niet ik zeer heel goed slecht met was op voor te van dat die er maar ook
        nog wel geen mijn bedankt levering snel langzaam vriendelijk alles niets zijn hebben
        """
    ),
}
