"""The words of the synthetic captions: motif nouns, colours, templates and noise, per language.

Motif phrases carry their article ("la luna", "l'œil") so Romance templates need no gender
agreement; the noun is the phrase's last word. Unrelated phrases and noise never contain a
motif word, so a caption that "does not mention the image" really does not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lexicon:
    """Everything needed to write captions in one language.

    ``singular``/``plural`` map a canonical motif name to article+noun phrases; templates use
    ``{a}``, ``{b}``, ``{c}`` for motif phrases and ``{colour}`` for a colour word. ``scenes`` map a
    motif to sentences of its world (the moon's night, the bird's flight) that never name it:
    real captions carry such context, and it is what lets a topic model group a motif's words.
    """

    singular: dict[str, tuple[str, ...]]
    plural: dict[str, tuple[str, ...]]
    colours: dict[str, str]
    one_motif: tuple[str, ...]
    two_motifs: tuple[str, ...]
    three_motifs: tuple[str, ...]
    colour_sentences: tuple[str, ...]
    unrelated: tuple[str, ...]
    hashtags: tuple[str, ...]
    scenes: dict[str, tuple[str, ...]]


# fmt: off
LEXICONS: dict[str, Lexicon] = {
    "en": Lexicon(
        singular={
            "star": ("the star", "the asterisk", "this star"),
            "moon": ("the moon", "the crescent"),
            "sun": ("the sun",),
            "eye": ("the eye", "this eye"),
            "bird": ("the bird", "the little bird"),
            "ladder": ("the ladder",),
            "spiral": ("the spiral", "the swirl"),
        },
        plural={
            "star": ("the stars", "the asterisks"),
            "eye": ("the eyes",),
            "bird": ("the birds",),
        },
        colours={"red": "red", "blue": "blue", "yellow": "yellow", "green": "green",
                 "black": "black"},
        one_motif=("Look at {a}!", "I love {a} in this one", "Miró and {a}", "Can you spot {a}?",
                   "{a}, pure Miró", "Obsessed with {a}", "Standing in front of {a} for ages"),
        two_motifs=("Look at {a} and {b}", "{a} next to {b}", "Miró's world: {a} under {b}",
                    "{a} and {b}, pure poetry", "I could stare at {a} and {b} all day"),
        three_motifs=("{a}, {b} and {c}", "Miró's alphabet: {a}, {b} and {c}",
                      "So many symbols: {a}, {b}, {c}"),
        colour_sentences=("So much {colour}!", "That {colour} though", "Miró's {colour} is unreal"),
        unrelated=("museum visit today", "amazing weekend with friends", "what a beautiful day",
                   "finally back in Barcelona", "coffee and art this morning",
                   "best exhibition of the year", "rainy afternoon at the museum",
                   "new week new art", "can't wait to come back", "throwback to last summer"),
        hashtags=("#art", "#surrealism", "#modernart", "#museum", "#artlovers", "#painting"),
        scenes={
            "star": ("it sparkles and twinkles", "a magic constellation", "all glitter"),
            "moon": ("a calm nocturne", "silver tide light", "a silvery nocturne"),
            "sun": ("summer heat and warmth", "warm golden daylight", "a glowing summer warmth"),
            "eye": ("it watches you", "a gaze that follows you", "always watching, staring"),
            "bird": ("flying free", "wings in the wind", "a song in flight"),
            "ladder": ("climbing up to escape", "step by step upwards", "an escape upwards"),
            "spiral": ("turning and turning", "an endless whirl", "dancing in circles"),
        },
    ),
    "es": Lexicon(
        singular={
            "star": ("la estrella", "el astro"),
            "moon": ("la luna",),
            "sun": ("el sol",),
            "eye": ("el ojo",),
            "bird": ("el pájaro", "el ave"),
            "ladder": ("la escalera",),
            "spiral": ("la espiral",),
        },
        plural={
            "star": ("las estrellas",),
            "eye": ("los ojos",),
            "bird": ("los pájaros",),
        },
        colours={"red": "rojo", "blue": "azul", "yellow": "amarillo", "green": "verde",
                 "black": "negro"},
        one_motif=("¡Mira {a}!", "Me quedo con {a}", "Miró y {a}", "¿Veis {a}?", "{a}, puro Miró",
                   "Obsesionada con {a}"),
        two_motifs=("Mira {a} y {b}", "{a} con {b}", "El mundo de Miró: {a} bajo {b}",
                    "{a} y {b}, pura poesía"),
        three_motifs=("{a}, {b} y {c}", "El alfabeto de Miró: {a}, {b} y {c}"),
        colour_sentences=("¡Cuánto {colour}!", "Ese {colour} intenso", "El {colour} de Miró"),
        unrelated=("visita al museo hoy", "fin de semana increíble", "qué día tan bonito",
                   "por fin de vuelta en Barcelona", "café y arte por la mañana",
                   "la mejor exposición del año", "tarde de lluvia en el museo",
                   "recuerdos del verano pasado"),
        hashtags=("#arte", "#pintura", "#surrealismo", "#museo", "#artecontemporaneo"),
        scenes={
            "star": ("brilla y centellea", "una constelación mágica", "todo destellos y brillo"),
            "moon": ("un nocturno sereno", "marea plateada", "luz plateada nocturna"),
            "sun": ("calor del verano", "luz cálida y dorada", "un cálido resplandor dorado"),
            "eye": ("te mira fijamente", "una mirada que te sigue", "siempre observando"),
            "bird": ("volando libre", "alas al viento", "un canto en vuelo"),
            "ladder": ("subiendo para escapar", "peldaño a peldaño", "una huida hacia arriba"),
            "spiral": ("girando sin fin", "un remolino infinito", "bailando en círculos"),
        },
    ),
    "ca": Lexicon(
        singular={
            "star": ("l'estel", "l'estrella"),
            "moon": ("la lluna",),
            "sun": ("el sol",),
            "eye": ("l'ull",),
            "bird": ("l'ocell",),
            "ladder": ("l'escala",),
            "spiral": ("l'espiral",),
        },
        plural={
            "star": ("els estels", "les estrelles"),
            "eye": ("els ulls",),
            "bird": ("els ocells",),
        },
        colours={"red": "vermell", "blue": "blau", "yellow": "groc", "green": "verd",
                 "black": "negre"},
        one_motif=("Mireu {a}!", "Em quedo amb {a}", "Miró i {a}", "Veieu {a}?",
                   "{a}, Miró en estat pur"),
        two_motifs=("Mireu {a} i {b}", "{a} amb {b}", "El món de Miró: {a} sota {b}",
                    "{a} i {b}, pura poesia"),
        three_motifs=("{a}, {b} i {c}", "L'alfabet de Miró: {a}, {b} i {c}"),
        colour_sentences=("Quin {colour}!", "Aquest {colour} tan intens", "El {colour} de Miró"),
        unrelated=("visita al museu avui", "un cap de setmana increïble", "quin dia més bonic",
                   "tornem a Barcelona", "cafè i art al matí", "la millor exposició de l'any",
                   "tarda de pluja al museu", "records de l'estiu passat"),
        hashtags=("#art", "#pintura", "#museu", "#catalunya", "#artcontemporani"),
        scenes={
            "star": ("brilla i espurneja", "una constel·lació màgica", "tot espurnes i brillantor"),
            "moon": ("un nocturn serè", "marea platejada", "llum platejada nocturna"),
            "sun": ("calor de l'estiu", "llum càlida i daurada", "una càlida resplendor daurada"),
            "eye": ("et mira fixament", "una mirada que et segueix", "sempre observant"),
            "bird": ("volant lliure", "ales al vent", "un cant en vol"),
            "ladder": ("pujant per escapar", "graó a graó", "una fugida cap amunt"),
            "spiral": ("girant sense fi", "un remolí infinit", "ballant en cercles"),
        },
    ),
    "fr": Lexicon(
        singular={
            "star": ("l'étoile", "l'astre"),
            "moon": ("la lune",),
            "sun": ("le soleil",),
            "eye": ("l'œil",),
            "bird": ("l'oiseau",),
            "ladder": ("l'échelle",),
            "spiral": ("la spirale",),
        },
        plural={
            "star": ("les étoiles",),
            "eye": ("les yeux",),
            "bird": ("les oiseaux",),
        },
        colours={"red": "rouge", "blue": "bleu", "yellow": "jaune", "green": "vert",
                 "black": "noir"},
        one_motif=("Regardez {a} !", "J'adore {a} dans ce tableau", "Miró et {a}",
                   "Vous voyez {a} ?", "{a}, du pur Miró"),
        two_motifs=("Regardez {a} et {b}", "{a} avec {b}", "Le monde de Miró : {a} sous {b}",
                    "{a} et {b}, pure poésie"),
        three_motifs=("{a}, {b} et {c}", "L'alphabet de Miró : {a}, {b} et {c}"),
        colour_sentences=("Tant de {colour} !", "Ce {colour} intense", "Le {colour} de Miró"),
        unrelated=("visite du musée aujourd'hui", "un week-end incroyable",
                   "quelle belle journée", "enfin de retour à Barcelone",
                   "café et art ce matin", "la meilleure expo de l'année",
                   "après-midi pluvieux au musée", "souvenirs de l'été dernier"),
        hashtags=("#art", "#peinture", "#surréalisme", "#musée", "#artmoderne"),
        scenes={
            "star": ("elle scintille et pétille", "une constellation magique", "étincelles"),
            "moon": ("un nocturne serein", "marée argentée", "lumière argentée nocturne"),
            "sun": ("chaleur de l'été", "lumière chaude et dorée", "une douce chaleur dorée"),
            "eye": ("il te regarde fixement", "un regard qui te suit", "toujours à observer"),
            "bird": ("voler en liberté", "des ailes dans le vent", "un chant en plein vol"),
            "ladder": ("grimper pour s'évader", "marche après marche", "une évasion vers le haut"),
            "spiral": ("tourner sans fin", "un tourbillon infini", "danser en cercles"),
        },
    ),
}

COMMON_HASHTAGS = ("#joanmiro", "#miro", "#joanmiró", "#barcelona", "#fundaciomiro", "#art",
                   "#artgallery", "#instaart", "#palma", "#mallorca")
EMOJIS = ("🎨", "✨", "❤️", "🌙", "⭐", "😍", "🔥", "🙌", "💙", "🖤")
INSTITUTIONS = ("@fundaciomiro", "@museoreinasofia", "@themuseumofmodernart", "@centrepompidou",
                "@tate", "@miromallorca")
URLS = ("https://www.fmirobcn.org", "https://www.moma.org/artists/4016",
        "https://www.museoreinasofia.es/coleccion", "https://miromallorca.com")
# fmt: on
