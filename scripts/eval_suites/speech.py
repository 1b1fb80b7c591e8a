"""Sentences for the synthesised speech suite, written for the Gemma 3n workbench (CC0 1.0).

Each is spoken once with espeak-ng (en-us voice). `FRENCH` holds reference translations for the
first few, used by the speech translation task.
"""

SENTENCES = [
    "The cat is sleeping on the warm window sill.",
    "Please close the door when you leave the room.",
    "It will rain tomorrow in the afternoon.",
    "My brother bought three red apples at the market.",
    "The train to the city leaves at seven o'clock.",
    "We are going to the beach this weekend.",
    "She reads a new book every month.",
    "The children are playing football in the park.",
    "Turn left at the next street and walk to the bank.",
    "The coffee is too hot to drink right now.",
    "Our teacher gave us a short test on Friday.",
    "Water boils at one hundred degrees.",
]

FRENCH = [
    "Le chat dort sur le rebord chaud de la fenêtre.",
    "Veuillez fermer la porte quand vous quittez la pièce.",
    "Il pleuvra demain dans l'après-midi.",
    "Mon frère a acheté trois pommes rouges au marché.",
    "Le train pour la ville part à sept heures.",
    "Nous allons à la plage ce week-end.",
]
